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

// Read a result's output values as a Go type: objects decode into a struct
// by its json tags, and a value that does not fit names its index.
func ExampleDecode() {
	script, err := vm.Compile("points.js", "", `
		module.exports = function (n) {
			for (let i = 1; i <= n; i++) emit({x: i, y: i * i, label: "p" + i});
			if (n > 2) return "and more";
		}`)
	if err != nil {
		panic(err)
	}
	factory, err := vm.NewFactory(script, vm.InitialState{})
	if err != nil {
		panic(err)
	}
	rs, err := factory.NewRunspace(context.Background())
	if err != nil {
		panic(err)
	}
	defer rs.Close()

	type point struct {
		X, Y  int
		Label string `json:"label"`
	}
	points, err := vm.Decode[point](rs.Invoke(context.Background(), 2))
	fmt.Println(points, err)

	_, err = vm.Decode[point](rs.Invoke(context.Background(), 3))
	fmt.Println(err)
	// Output:
	// [{1 1 p1} {2 4 p2}] <nil>
	// output value 3: json: cannot unmarshal string into Go value of type vm_test.point
}

// Values decodes output values as encoding/json decodes into an any:
// numbers are float64.
func ExampleResult_Values() {
	script, err := vm.Compile("mixed.js", "", `() => { emit(3, "three", [1, 2], {n: 0.5}, null); return true }`)
	if err != nil {
		panic(err)
	}
	factory, err := vm.NewFactory(script, vm.InitialState{})
	if err != nil {
		panic(err)
	}
	rs, err := factory.NewRunspace(context.Background())
	if err != nil {
		panic(err)
	}
	defer rs.Close()
	values, err := rs.Invoke(context.Background(), nil).Values()
	if err != nil {
		panic(err)
	}
	for _, v := range values {
		fmt.Printf("%T %v\n", v, v)
	}
	// Output:
	// float64 3
	// string three
	// []interface {} [1 2]
	// map[string]interface {} map[n:0.5]
	// <nil> <nil>
	// bool true
}
