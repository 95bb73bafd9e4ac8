package vm_test

import (
	"context"
	"fmt"

	"github.com/runspaces/rsh/vm"
)

// Compile a script once, make a runspace from an initial state, and run
// items in it one at a time.
func Example() {
	script, err := vm.Compile("greet.js", "", `
		module.exports = function (name, params) {
			emit(greeting + ", " + name);
			if (name === "") writeError("empty name");
			return params.punctuation;
		}`)
	if err != nil {
		panic(err)
	}
	factory, err := vm.NewFactory(script, vm.InitialState{
		Variables: []vm.Variable{{Name: "greeting", Value: "hello"}},
		Params:    map[string]any{"punctuation": "!"},
	})
	if err != nil {
		panic(err)
	}
	rs, err := factory.NewRunspace(context.Background())
	if err != nil {
		panic(err)
	}
	defer rs.Close()
	for _, name := range []string{"ada", ""} {
		res := rs.Invoke(context.Background(), name)
		values, _ := res.Values()
		fmt.Println(res.Status, values, res.Errors)
	}
	// Output:
	// Success [hello, ada !] []
	// Error [hello,  !] [empty name]
}
