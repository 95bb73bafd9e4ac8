package jobs

import (
	"errors"
	"fmt"
	"net"
)

func dialError(where string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%s: %w", where, ErrNoDaemon)
	}
	return err
}
