// Command hostmodule is a small service that runs its users' pricing
// scripts against data the service owns: a host module ("catalogue") and a
// host function (lookupUser) that the scripts call, each item under a
// timeout, in worker processes under a memory limit. A user's script can
// neither take the service down nor read anything the service does not
// hand it.
//
//	go run ./examples/hostmodule SCRIPT < orders.ndjson
//
// Each line of stdin is an order, {"user": 1, "item": "apple", "qty": 3};
// the script gets it and returns a price. Try:
//
//	echo '{"user":1,"item":"apple","qty":3}' | go run ./examples/hostmodule examples/hostmodule/price.js
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dop251/goja"
	"github.com/dop251/goja_nodejs/require"

	"github.com/runspaces/rsh/builtins"
	"github.com/runspaces/rsh/pool"
	"github.com/runspaces/rsh/vm"
	"github.com/runspaces/rsh/worker"
)

// Limits of one user script: an item may run for itemTimeout, and a worker
// process may hold workerMemory.
const (
	itemTimeout  = 2 * time.Second
	workerMemory = 256 << 20
)

// catalogue is the service's own data: unit prices by item.
func catalogue() map[string]float64 {
	return map[string]float64{"apple": 0.5, "pear": 0.75, "plum": 0.3}
}

// users is the service's user table: discount rates by user id.
func users() map[int64]map[string]any {
	return map[int64]map[string]any{
		1: {"name": "ann", "discount": 0.1},
		2: {"name": "bob", "discount": 0},
	}
}

// host returns what the service gives scripts: the catalogue module and
// the lookupUser function. The worker processes get the same (see main).
func host() ([]vm.HostModule, []vm.HostFunction) {
	prices, table := catalogue(), users()
	mod := vm.HostModule{Name: "catalogue", Require: func(env *builtins.Env) require.ModuleLoader {
		return func(rt *goja.Runtime, module *goja.Object) {
			exports := module.Get("exports").(*goja.Object)
			_ = exports.Set("price", func(item string) goja.Value {
				p, ok := prices[item]
				if !ok {
					builtins.Throw(rt, "NotFound", fmt.Errorf("no item %q in the catalogue", item))
				}
				return rt.ToValue(p)
			})
		}
	}}
	lookup := vm.HostFunction{Name: "lookupUser", Func: func(ctx context.Context, args []any) (any, error) {
		id, ok := args[0].(int64)
		if len(args) != 1 || !ok {
			return nil, errors.New("lookupUser(id): want one whole number")
		}
		u, ok := table[id]
		if !ok {
			return nil, fmt.Errorf("no user %d", id)
		}
		return u, nil
	}}
	return []vm.HostModule{mod}, []vm.HostFunction{lookup}
}

func main() {
	// A worker process is this program started again: it serves its
	// parent here, with the same host modules and functions.
	mods, fns := host()
	worker.Main(worker.WithHost(mods, fns))
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: hostmodule SCRIPT < orders.ndjson")
		os.Exit(2)
	}
	src, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostmodule:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), os.Args[1], string(src), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hostmodule:", err)
		os.Exit(1)
	}
}

// run prices every order of in with the script and writes one line per
// order: its price, or why it has none.
func run(ctx context.Context, name, src string, in io.Reader, out io.Writer) error {
	script, err := vm.CompileDetached(name, src)
	if err != nil {
		return err
	}
	mods, fns := host()
	state := vm.InitialState{Modules: mods, Functions: fns, Timeout: itemTimeout}
	engine, err := worker.New(worker.Options{Script: script, State: state, PerProcess: 2, MaxMemory: workerMemory})
	if err != nil {
		return err
	}
	defer engine.Close()
	factory, err := vm.NewFactory(script, state)
	if err != nil {
		return err
	}
	p, err := pool.New(ctx, pool.Options{Engine: engine, Factory: factory, Throttle: 2, KeepOrder: true})
	if err != nil {
		return err
	}
	defer p.Close()
	var orders []json.RawMessage
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		orders = append(orders, json.RawMessage(append([]byte(nil), sc.Bytes()...)))
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for res := range p.Run(ctx, pool.Items(orders)) {
		if res.Status != vm.Success {
			msg := ""
			if res.Error != nil {
				msg = ": " + res.Error.Message
			}
			fmt.Fprintf(out, "%d: %s%s\n", res.Seq, res.Status, msg)
			continue
		}
		fmt.Fprintf(out, "%d: %s\n", res.Seq, res.Output[0])
	}
	return nil
}
