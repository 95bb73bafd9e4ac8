package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// serveReady bounds the wait for an embedded server to accept clients:
// it replays its store first, which takes a moment for a large one.
const serveReady = 30 * time.Second

// ServeOptions configure an embedded server.
type ServeOptions struct {
	// StoreDir is the directory JetStream keeps its streams in.
	StoreDir string
	// Host is the address to listen on; "" means 127.0.0.1 (this machine
	// only).
	Host string
	// Port is the client port; 0 means 4222, -1 any free port.
	Port int
	// Token, when set, is required from clients.
	Token string
}

// Server is an embedded single-node NATS server with JetStream, for
// trying the queue on one machine and for tests. Production points
// workers at a NATS cluster instead.
type Server struct {
	s *server.Server
}

// Serve starts an embedded server and waits until it accepts clients.
func Serve(o ServeOptions) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("queue: serve: no store directory")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	s, err := server.NewServer(&server.Options{
		JetStream:     true,
		StoreDir:      o.StoreDir,
		Host:          o.Host,
		Port:          o.Port,
		Authorization: o.Token,
		NoSigs:        true, // the embedding program handles signals
		NoLog:         true,
	})
	if err != nil {
		return nil, fmt.Errorf("queue: serve: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(serveReady) {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("queue: serve: the server at %s:%d did not start within %v", o.Host, o.Port, serveReady)
	}
	return &Server{s: s}, nil
}

// URL is the URL clients connect to: nats://HOST:PORT, without a stream
// name.
func (s *Server) URL() string { return s.s.ClientURL() }

// Shutdown stops the server and waits until it has.
func (s *Server) Shutdown() {
	s.s.Shutdown()
	s.s.WaitForShutdown()
}
