package vm

// jsonNames keeps the property names a runspace's JSON decoder has read, so
// that a name seen before costs no allocation: items of a stream, and the
// texts a script parses, usually repeat the same few names.
type jsonNames struct {
	m map[string]string
}

// maxJSONNames bounds how many names a runspace keeps: records share a few
// dozen; a stream whose names are all different (ids used as keys) stops
// adding once full, and costs what it did without the cache.
const maxJSONNames = 4096

// maxJSONNameLen is the longest name kept: longer ones are rarely
// repeated, and would let the cache grow large.
const maxJSONNameLen = 64

func (n *jsonNames) add(s string) {
	if len(s) > maxJSONNameLen || len(n.m) >= maxJSONNames {
		return
	}
	if n.m == nil {
		n.m = make(map[string]string)
	}
	n.m[s] = s
}
