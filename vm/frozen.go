package vm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dop251/goja"
)

// The params object is the same for every item and must not change, like a
// deeply frozen object. Freezing a fresh object in every runspace costs a
// third of a runspace's creation (Object.freeze and friends are built on
// first use), so params are instead read-only views — goja dynamic objects
// and arrays — over data decoded once per factory. Writes are refused
// (a TypeError in strict mode, ignored otherwise, as for a frozen object).

// frozenNode is one decoded JSON value, objects keeping their key order.
type frozenNode struct {
	value  any // string, float64, bool or nil for primitives
	keys   []string
	fields map[string]*frozenNode
	elems  []*frozenNode
	kind   byte // 'o' object, 'a' array, 'p' primitive
}

// decodeFrozen decodes JSON into a frozenNode tree. The decoder recurses
// once per level, so the depth is checked first.
func decodeFrozen(data []byte) (*frozenNode, error) {
	if jsonTooDeep(data) {
		return nil, errJSONTooDeep
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := decodeFrozenValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return n, nil
}

func decodeFrozenValue(dec *json.Decoder) (*frozenNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &frozenNode{kind: 'o', fields: map[string]*frozenNode{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string)
				v, err := decodeFrozenValue(dec)
				if err != nil {
					return nil, err
				}
				if _, dup := n.fields[k]; !dup {
					n.keys = append(n.keys, k)
				}
				n.fields[k] = v
			}
			_, err := dec.Token() // }
			return n, err
		case '[':
			n := &frozenNode{kind: 'a'}
			for dec.More() {
				v, err := decodeFrozenValue(dec)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			_, err := dec.Token() // ]
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, err
		}
		return &frozenNode{kind: 'p', value: f}, nil
	default: // string, bool, nil
		return &frozenNode{kind: 'p', value: t}, nil
	}
}

// toValue makes the read-only JavaScript view of n in rt.
func (n *frozenNode) toValue(rt *goja.Runtime) goja.Value {
	switch n.kind {
	case 'o':
		return rt.NewDynamicObject(&frozenObject{rt: rt, n: n})
	case 'a':
		return rt.NewDynamicArray(&frozenArray{rt: rt, n: n})
	}
	if f, ok := n.value.(float64); ok && f == float64(int64(f)) && f >= -1e15 && f <= 1e15 {
		return rt.ToValue(int64(f))
	}
	if n.value == nil {
		return goja.Null()
	}
	return rt.ToValue(n.value)
}

// frozenObject is a read-only object view; nested values are made on first
// access and kept, so params.a === params.a.
type frozenObject struct {
	rt    *goja.Runtime
	n     *frozenNode
	cache map[string]goja.Value
}

func (o *frozenObject) Get(key string) goja.Value {
	child, ok := o.n.fields[key]
	if !ok {
		return nil
	}
	if v, ok := o.cache[key]; ok {
		return v
	}
	v := child.toValue(o.rt)
	if o.cache == nil {
		o.cache = map[string]goja.Value{}
	}
	o.cache[key] = v
	return v
}

func (o *frozenObject) Set(string, goja.Value) bool { return false }
func (o *frozenObject) Has(key string) bool         { _, ok := o.n.fields[key]; return ok }
func (o *frozenObject) Delete(key string) bool      { return !o.Has(key) }
func (o *frozenObject) Keys() []string              { return append([]string(nil), o.n.keys...) }

// frozenArray is a read-only array view.
type frozenArray struct {
	rt    *goja.Runtime
	n     *frozenNode
	cache []goja.Value
}

func (a *frozenArray) Len() int { return len(a.n.elems) }

func (a *frozenArray) Get(i int) goja.Value {
	if i < 0 || i >= len(a.n.elems) {
		return nil
	}
	if a.cache == nil {
		a.cache = make([]goja.Value, len(a.n.elems))
	}
	if a.cache[i] == nil {
		a.cache[i] = a.n.elems[i].toValue(a.rt)
	}
	return a.cache[i]
}

func (a *frozenArray) Set(int, goja.Value) bool { return false }
func (a *frozenArray) SetLen(int) bool          { return false }
