// scan.js — the scan workload of scripts/bench: one TCP connect per item,
// so that rsh's pool spreads the ports of one host over its runspaces
// (examples/portscan.js scans one host's ports one after the other).
//
//   seq 1 65535 | sed 's/^/127.0.0.1:/' |
//     rsh run scripts/bench/scan.js --allow-net=127.0.0.1 -t 64
//
// An item is "HOST:PORT" or {"host": HOST, "port": PORT}; the output is
// one line "STATUS PORT", STATUS being open, closed or filtered as for
// tcp.connect. --param timeoutMs=N sets the connect timeout (default 1000).
const tcp = require("tcp");

// The options object is made once per params (they are the same for every
// item), not once per port.
let lastParams, options;

module.exports = function (target, params) {
  let host, port;
  if (typeof target === "string") {
    const i = target.lastIndexOf(":");
    host = target.slice(0, i);
    port = +target.slice(i + 1);
  } else if (target && typeof target === "object") {
    host = target.host;
    port = target.port;
  }
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError("want HOST:PORT or {host, port}, got " + JSON.stringify(target));
  }
  if (params !== lastParams) {
    lastParams = params;
    options = { timeout: params.timeoutMs || 1000 };
  }
  return tcp.connect(host, port, options).status + " " + port;
};
