// Every way goja parses code, each ending with a source-map comment that
// names the FIFO next to this file: the script itself, eval, new Function
// and a required module. The test passes the FIFO's path relative to the
// working directory as params.fifo (eval'd code is named relative to it).
module.exports = function (item, params) {
  const a = eval("1\n//# sourceMappingURL=" + params.fifo)
  const f = new Function("return 2\n//# sourceMappingURL=" + params.fifo)
  const m = require("./module.js")
  return [a, f(), m]
}
//# sourceMappingURL=fifo
