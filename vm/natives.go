package vm

import (
	"errors"
	"reflect"
	"strconv"

	"github.com/dop251/goja"
)

// Every runspace replaces a few of goja's natives with bounded versions,
// installed before the script runs (installNatives):
//
//   - JSON.parse refuses text nested deeper than MaxJSONDepth (a
//     SyntaxError) before goja's parser, which recurses once per level, sees
//     it; it decodes with rsh's own decoder when it can (decodeJSON, several
//     times faster) and walks a reviver itself, so that a reviver that grafts
//     a deep structure onto the result cannot make the walk recurse without
//     bound either.
//   - JSON.stringify hands goja's own a replacer function of rsh's that
//     follows the depth of the value being written through the holder
//     objects goja passes it, and throws a RangeError past MaxJSONDepth. It
//     calls the script's replacer function first, so that the script's sees
//     what it would see without rsh's; a replacer array becomes a view of
//     each object with just the listed keys (see listView).
//     Called with no replacer and no indentation (the common form), it
//     writes the value with rsh's stringifier instead (jsonstringify.go),
//     which takes the engine's steps itself, bounded, without a replacer.
//   - Array.prototype.join and toLocaleString, which call themselves
//     (through each element's toString or toLocaleString) for arrays nested
//     in arrays, count how deeply they are nested and throw a RangeError
//     past MaxJSONDepth. String(array) and the like go through join.
//
// Otherwise each behaves as the engine's: same results, same errors, same
// calls into the script in the same order. The differential tests in
// natives_test.go check that. One exception, which a script would
// have to go out of its way to see: the error classes thrown at the limit
// (RangeError, SyntaxError) and the reviver walk's Reflect.get,
// Reflect.defineProperty, Reflect.deleteProperty and Object.keys are looked
// up as globals when first needed, not taken from the engine up front (that
// would add a third to the cost of making a runspace), so a script that
// replaced them gets its own.
//
// Not bounded, and left to containment in worker processes:
// natives that recurse without a depth check but need millions of levels
// and gigabytes of heap built first, such as Array.prototype.flat(Infinity)
// and chains of proxies or prototypes.

// proxyType is what ExportType reports for a Proxy.
var proxyType = reflect.TypeOf(goja.Proxy{})

// errInterrupted is thrown by a long native call of rsh's that sees the
// item's interrupt: the item is being stopped, and the engine would only
// notice at the next JavaScript instruction.
var errInterrupted = errors.New("interrupted")

// natives is a runspace's bounded natives and the engine's originals they
// call, taken before the script runs.
type natives struct {
	parse, stringify goja.Callable // goja's JSON.parse and JSON.stringify

	// For the reviver walk, looked up on its first use (see reflect).
	reflectGet, reflectDelete, reflectDefine, objectKeys goja.Callable

	limit  int              // MaxJSONDepth; tests lower it, to stay quick
	track  goja.Value       // the replacer function given to goja's JSON.stringify
	calls  []*stringifyCall // JSON.stringify calls in progress, innermost last
	nested int              // Array.prototype.join and toLocaleString calls in progress
	free   []*stringifyCall // finished calls, for reuse

	// For JSON.stringify without a replacer or indentation (see
	// stringifier): its helpers, made on first use, and its buffers,
	// kept for the next call.
	helpers *stringifyHelpers
	sbuf    []byte
	sstack  []*goja.Object

	names jsonNames // property names read by the JSON decoder
}

// stringifyCall is the state of one JSON.stringify call.
type stringifyCall struct {
	what string // named in the depth error: "JSON.stringify" or "output value"
	// stack holds the objects being written, outermost first: stack[0] is
	// goja's root holder, and stack[i] is at depth i.
	stack []*goja.Object
	user  goja.Callable // the script's replacer function, if any
	// keys is the property list of a replacer array; list says there is
	// one (it may be empty).
	keys  []string
	list  bool
	views map[*goja.Object]*goja.Object // list views by object
}

// maxKeptStack is the largest stack a finished stringifyCall keeps for
// reuse: enough for ordinary data, while a deep value's stack is let go.
const maxKeptStack = 256

func (r *Runspace) installNatives() {
	rt, n := r.rt, &r.nat
	fn := func(v goja.Value) goja.Callable {
		f, ok := goja.AssertFunction(v)
		if !ok {
			panic("vm: a builtin is not a function") // the engine's own globals
		}
		return f
	}
	object := func(v goja.Value) *goja.Object { return v.ToObject(rt) }

	n.limit = MaxJSONDepth
	json := object(rt.Get("JSON"))
	n.parse, n.stringify = fn(json.Get("parse")), fn(json.Get("stringify"))
	r.defineNative(json, "parse", 2, r.jsonParse)
	r.defineNative(json, "stringify", 3, r.jsonStringify)

	arrayProto := rt.NewArray().Prototype() // the prototype without the constructor, which is built on first use
	for _, m := range []struct {
		name   string
		length int
	}{{"join", 1}, {"toLocaleString", 0}} {
		orig := fn(arrayProto.Get(m.name))
		name := "Array.prototype." + m.name
		r.defineNative(arrayProto, m.name, m.length, func(call goja.FunctionCall) goja.Value {
			if n.nested >= n.limit {
				panic(r.newError("RangeError", name+": arrays nested more than "+strconv.Itoa(n.limit)+" levels deep (rsh's limit)"))
			}
			if r.fired.Load() {
				panic(r.rt.NewGoError(errInterrupted))
			}
			n.nested++
			defer func() { n.nested-- }()
			return r.must(orig(call.This, call.Arguments...))
		})
	}
}

// newNative makes a native function with the name and length JavaScript
// sees.
func (r *Runspace) newNative(name string, length int, f func(goja.FunctionCall) goja.Value) *goja.Object {
	o := r.rt.ToValue(f).(*goja.Object)
	_ = o.DefineDataProperty("name", r.rt.ToValue(name), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	_ = o.DefineDataProperty("length", r.rt.ToValue(length), goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	return o
}

// defineNative sets obj[name] to a native function, with the attributes
// of a builtin method (writable, configurable, not enumerable).
func (r *Runspace) defineNative(obj *goja.Object, name string, length int, f func(goja.FunctionCall) goja.Value) {
	_ = obj.DefineDataProperty(name, r.newNative(name, length, f), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}

// must returns v, or throws err in the calling JavaScript code.
func (r *Runspace) must(v goja.Value, err error) goja.Value {
	if err != nil {
		panic(err)
	}
	return v
}

// newError makes an error of the global class name (RangeError,
// SyntaxError). The constructor is looked up when needed, not when every
// runspace is made: taking the engine's own up front would double the cost
// of making a runspace (the engine builds its globals on first use), for
// errors that are almost never thrown. A script that replaced the global
// gets its own class; one that made it something else, a TypeError.
func (r *Runspace) newError(class, msg string) *goja.Object {
	if ctor, ok := r.rt.Get(class).(*goja.Object); ok {
		if o, err := r.rt.New(ctor, r.rt.ToValue(msg)); err == nil {
			return o
		}
	}
	return r.rt.NewTypeError(msg)
}

// tooDeep makes the error thrown when what passes the depth limit.
func (r *Runspace) tooDeep(class, what string, limit int) *goja.Object {
	return r.newError(class, what+": "+tooDeepMessage(limit))
}

// reflect looks up what the reviver walk uses, on its first use, for the
// same reason as newError: Reflect is built on first use.
func (n *natives) reflect(rt *goja.Runtime) {
	if n.reflectGet != nil {
		return
	}
	fn := func(o goja.Value, name string) goja.Callable {
		f, ok := goja.AssertFunction(o.ToObject(rt).Get(name))
		if !ok {
			panic(rt.NewTypeError("JSON.parse: %s is not a function", name))
		}
		return f
	}
	reflect := rt.Get("Reflect")
	n.reflectGet, n.reflectDelete, n.reflectDefine = fn(reflect, "get"), fn(reflect, "deleteProperty"), fn(reflect, "defineProperty")
	n.objectKeys = fn(rt.Get("Object"), "keys")
}

// jsonParse is the runspace's JSON.parse.
func (r *Runspace) jsonParse(call goja.FunctionCall) goja.Value {
	n := &r.nat
	text := call.Argument(0)
	if _, ok := text.(*goja.Symbol); ok {
		return r.must(n.parse(goja.Undefined(), text)) // the engine's TypeError
	}
	s := text.String()
	v, err := decodeJSONString(r.rt, &n.names, s)
	switch {
	case err == errJSONTooDeep:
		panic(r.tooDeep("SyntaxError", "JSON.parse", MaxJSONDepth))
	case err != nil:
		if jsonTooDeep(s) {
			panic(r.tooDeep("SyntaxError", "JSON.parse", MaxJSONDepth))
		}
		if _, isString := text.(goja.String); !isString {
			text = r.rt.ToValue(s) // converted once, as the engine does
		}
		v = r.must(n.parse(goja.Undefined(), text))
	}
	reviver := call.Argument(1)
	if goja.IsUndefined(reviver) {
		return v
	}
	f, ok := goja.AssertFunction(reviver.ToObject(r.rt))
	if !ok {
		return v
	}
	r.nat.reflect(r.rt)
	root := r.rt.NewObject()
	_ = root.DefineDataProperty("", v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE)
	return r.revive(f, root, r.rt.ToValue(""), 0)
}

// revive is JSON.parse's walk of a reviver over holder[key], whose value
// is nested in depth arrays and objects.
func (r *Runspace) revive(reviver goja.Callable, holder *goja.Object, key goja.Value, depth int) goja.Value {
	n := &r.nat
	val := r.must(n.reflectGet(goja.Undefined(), holder, key))
	if o, ok := val.(*goja.Object); ok {
		if depth >= n.limit {
			panic(r.tooDeep("RangeError", "JSON.parse reviver", n.limit))
		}
		each := func(k goja.Value) {
			nv := r.revive(reviver, o, k, depth+1)
			if goja.IsUndefined(nv) {
				r.must(n.reflectDelete(goja.Undefined(), o, k))
			} else {
				r.must(n.reflectDefine(goja.Undefined(), o, k, r.dataDescriptor(nv)))
			}
		}
		if r.isArray(o) {
			length := toLength(r.must(n.reflectGet(goja.Undefined(), o, r.rt.ToValue("length"))))
			for i := int64(0); i < length; i++ {
				each(r.rt.ToValue(strconv.FormatInt(i, 10)))
			}
		} else {
			keys := r.must(n.objectKeys(goja.Undefined(), o)).(*goja.Object)
			for i, nk := int64(0), keys.Get("length").ToInteger(); i < nk; i++ {
				each(keys.Get(strconv.FormatInt(i, 10)))
			}
		}
	}
	return r.must(reviver(holder, key, val))
}

// dataDescriptor is the descriptor of a plain data property holding v,
// with no prototype so that nothing the script put on Object.prototype
// reads as one of its fields.
func (r *Runspace) dataDescriptor(v goja.Value) *goja.Object {
	d := r.rt.NewObject()
	_ = d.SetPrototype(nil)
	_ = d.Set("value", v)
	_ = d.Set("writable", true)
	_ = d.Set("enumerable", true)
	_ = d.Set("configurable", true)
	return d
}

// maxLength is the largest array length, 2^53-1.
const maxLength = 1<<53 - 1

// toLength is the ToLength conversion: an integer clamped to [0, 2^53-1].
func toLength(v goja.Value) int64 {
	if v == nil {
		return 0
	}
	return min(max(v.ToInteger(), 0), maxLength)
}

// isArray is Array.isArray: true for an array, or a proxy of one.
func (r *Runspace) isArray(o *goja.Object) bool {
	for o.ExportType() == proxyType {
		t := o.Export().(goja.Proxy).Target()
		if t == nil {
			panic(r.rt.NewTypeError("Cannot perform 'IsArray' on a proxy that has been revoked"))
		}
		o = t
	}
	return o.ClassName() == "Array"
}

// jsonStringify is the runspace's JSON.stringify.
func (r *Runspace) jsonStringify(call goja.FunctionCall) goja.Value {
	if plainStringify(call.Argument(1), call.Argument(2)) {
		return r.stringifyPlain(call.Argument(0), "JSON.stringify")
	}
	return r.must(r.stringify(call.Argument(0), call.Argument(1), call.Argument(2), "JSON.stringify"))
}

// stringify is JSON.stringify(value, replacer, space) with the depth bound;
// what names the caller in the depth error. Called from Go, with no
// replacer, it returns the script's exceptions instead of throwing them.
func (r *Runspace) stringify(value, replacer, space goja.Value, what string) (goja.Value, error) {
	if plainStringify(replacer, space) {
		var out goja.Value
		if ex := r.rt.Try(func() { out = r.stringifyPlain(value, what) }); ex != nil {
			return nil, ex
		}
		return out, nil
	}
	return r.stringifyTracked(value, replacer, space, what)
}

// stringifyTracked is stringify through the engine's JSON.stringify with
// rsh's depth-tracking replacer.
func (r *Runspace) stringifyTracked(value, replacer, space goja.Value, what string) (goja.Value, error) {
	n := &r.nat
	c := n.begin(what)
	defer n.end()
	if o, ok := replacer.(*goja.Object); ok {
		if r.isArray(o) {
			c.keys, c.list = r.propertyList(o), true
		} else if f, ok := goja.AssertFunction(o); ok {
			c.user = f
		}
	}
	if n.track == nil {
		n.track = r.newNative("", 2, r.trackDepth)
	}
	return n.stringify(goja.Undefined(), value, n.track, space)
}

// propertyList reads a replacer array as JSON.stringify does: its strings
// and numbers (primitive or boxed) as strings, first occurrences only.
func (r *Runspace) propertyList(a *goja.Object) []string {
	length := toLength(a.Get("length"))
	keys := []string{}
	seen := map[string]bool{}
	for i := int64(0); i < length; i++ {
		if r.fired.Load() {
			panic(r.rt.NewGoError(errInterrupted))
		}
		v := a.Get(strconv.FormatInt(i, 10))
		if v == nil {
			continue
		}
		if o, ok := v.(*goja.Object); ok {
			if c := o.ClassName(); c != "Number" && c != "String" {
				continue
			}
		} else if _, ok := v.(goja.String); !ok && v.ExportType() != typeInt64 && v.ExportType() != typeFloat64 {
			continue
		}
		name := v.String()
		if !seen[name] {
			seen[name] = true
			keys = append(keys, name)
		}
	}
	return keys
}

func (n *natives) begin(what string) *stringifyCall {
	var c *stringifyCall
	if k := len(n.free); k > 0 {
		c, n.free = n.free[k-1], n.free[:k-1]
	} else {
		c = &stringifyCall{}
	}
	c.what = what
	n.calls = append(n.calls, c)
	return c
}

func (n *natives) end() {
	k := len(n.calls) - 1
	c := n.calls[k]
	n.calls[k] = nil
	n.calls = n.calls[:k]
	if cap(c.stack) > maxKeptStack {
		c.stack = nil
	} else {
		clear(c.stack[:cap(c.stack)])
		c.stack = c.stack[:0]
	}
	c.user, c.keys, c.list, c.views = nil, nil, false, nil
	n.free = append(n.free, c)
}

// trackDepth is the replacer function goja's JSON.stringify is given. goja
// calls it for every value it writes, with the object holding the value as
// this, after toJSON and before descending into the value. The holder is
// the object goja is writing, so every object above it on the call's stack
// is finished: popping down to it leaves the stack holding the path from
// the root, whose length is the value's depth.
func (r *Runspace) trackDepth(call goja.FunctionCall) goja.Value {
	n := &r.nat
	c := n.calls[len(n.calls)-1]
	value := call.Argument(1)
	if c.user != nil {
		value = r.must(c.user(call.This, call.Argument(0), value))
	}
	if r.fired.Load() {
		panic(r.rt.NewGoError(errInterrupted))
	}
	o, ok := value.(*goja.Object)
	if !ok {
		return value
	}
	holder, _ := call.This.(*goja.Object)
	depth := len(c.stack)
	if depth == 0 {
		c.stack = append(c.stack, holder) // goja's root holder
		depth = 1
	} else {
		for depth > 0 && c.stack[depth-1] != holder {
			depth--
		}
		if depth == 0 {
			// Not on the stack: it cannot happen, as every object goja
			// descends into came through here. Count as deep as can be.
			depth = len(c.stack)
			c.stack = append(c.stack, holder)
			depth++
		}
		c.stack = c.stack[:depth]
	}
	// Objects that goja writes without descending into them (functions,
	// boxed primitives) are pushed too: they are never a holder, so the
	// next value pops them. Only a real container is held to the limit.
	if depth > n.limit && writtenAsContainer(o) {
		panic(r.tooDeep("RangeError", c.what, n.limit))
	}
	if c.list && writtenAsContainer(o) && !r.isArray(o) {
		o = c.view(r.rt, o)
		value = o
	}
	c.stack = append(c.stack, o)
	return value
}

// writtenAsContainer reports whether JSON.stringify writes o as an array
// or object, descending into it, rather than as a primitive (a boxed
// number, string, boolean, BigInt or symbol), raw JSON, or nothing (a
// function).
func writtenAsContainer(o *goja.Object) bool {
	switch o.ClassName() {
	case "Number", "String", "Boolean", "RawJSON", "Function":
		return false
	case "Object":
		// Boxed BigInts and symbols are of class Object; they export
		// as their primitive.
		if t := o.ExportType(); t == typeBigInt || t == typeString {
			return false
		}
	}
	return true
}

// view returns the object JSON.stringify writes in place of o when the
// replacer is an array: goja is given a replacer function instead (rsh's),
// which cannot restrict the keys, so it gets an object whose keys are the
// list's. One view per object, so that a cycle is still one to goja.
func (c *stringifyCall) view(rt *goja.Runtime, o *goja.Object) *goja.Object {
	if v, ok := c.views[o]; ok {
		return v
	}
	if c.views == nil {
		c.views = map[*goja.Object]*goja.Object{}
	}
	v := rt.NewDynamicObject(&listView{o: o, keys: c.keys})
	c.views[o] = v
	return v
}

// listView is an object seen through a replacer array: its keys are the
// list, each read from the object (own or inherited, through getters and
// proxies) when JSON.stringify reads it, as it would without the view.
type listView struct {
	o    *goja.Object
	keys []string
}

func (v *listView) Get(key string) goja.Value {
	if x := v.o.Get(key); x != nil {
		return x
	}
	// Undefined, not nil: nil would make goja look on the view's own
	// prototype.
	return goja.Undefined()
}
func (v *listView) Set(string, goja.Value) bool { return false }
func (v *listView) Has(string) bool             { return true }
func (v *listView) Delete(string) bool          { return false }
func (v *listView) Keys() []string              { return v.keys }
