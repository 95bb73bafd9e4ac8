package builtins

import (
	"github.com/dop251/goja"
)

// Throw panics with a JavaScript Error whose name is name and whose message is
// err's text, for a native function to raise a catchable error in the script.
// Permission errors keep the name "PermissionDenied" whatever name is given.
func Throw(rt *goja.Runtime, name string, err error) {
	var pe *PermissionError
	if asPermission(err, &pe) {
		name = "PermissionDenied"
	}
	o := rt.NewGoError(err)
	if name != "" {
		_ = o.Set("name", name)
	}
	panic(o)
}
