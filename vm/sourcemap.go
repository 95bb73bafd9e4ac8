package vm

import (
	"bytes"
	"strings"

	"github.com/dop251/goja_nodejs/require"
)

// Source maps are off everywhere in rsh. goja reads the file that a
// "//# sourceMappingURL=" comment names when it parses code: the script,
// code made at run time by eval and new Function, and required modules.
// That read happens behind the permission checks, can be pointed at a
// device (/dev/zero: memory runs out) or a FIFO (the parse never returns,
// whatever the timeout), and rsh has no use for the maps. So the script is
// parsed with parser.WithDisableSourceMaps (Compile), every runtime gets
// the same option for eval and Function (NewRunspace), and required
// modules go through moduleSourceWithoutMap.

// moduleSourceWithoutMap wraps the require source loader so that a
// module's source map is never read. goja_nodejs parses a module with that
// same loader as its source-map loader, and offers no way to turn maps off;
// goja looks for the comment only on a module's last line (before the
// module wrapper's closing "})"). A final empty line comment hides it
// without changing the meaning or the line numbers of anything in the
// module. JSON files are left alone: require wraps them in a string.
func moduleSourceWithoutMap(load require.SourceLoader) require.SourceLoader {
	return func(path string) ([]byte, error) {
		src, err := load(path)
		if err != nil || strings.HasSuffix(path, ".json") || !bytes.Contains(src, []byte("sourceMappingURL")) {
			return src, err
		}
		return append(src[:len(src):len(src)], "\n//"...), nil
	}
}
