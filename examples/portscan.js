// portscan.js — a TCP connect scan, one host per input line.
//
//   rsh run examples/portscan.js --allow-net=127.0.0.1 \
//       --param ports='[22,80,8080]' --param timeoutMs=500 --summary < hosts.txt
//
// For every port it emits {host, port, status, rttMs} where status has
// nmap's meanings: "open" (connected), "closed" (refused), "filtered" (no
// answer before timeoutMs). Then it returns a summary of the host.
// Hosts run in parallel (--throttle); the ports of one host run one after
// the other so that a host is never flooded. A host on the network keeps
// its item waiting for answers, not computing, so give many hosts a
// --throttle of tens or hundreds: the default, one per CPU, suits work
// that computes. (On loopback the answer is there when connect returns,
// and the throttle changes nothing.)
//
// Progress is written at most once per whole percent of a host's ports,
// so that a long list (all 65,535) stays within --max-messages.
const tcp = require("tcp");

module.exports = function (host, params) {
  if (typeof host !== "string" || host === "") {
    throw new TypeError("want a host name or address, got " + JSON.stringify(host));
  }
  const ports = params.ports || [22, 80, 443];
  if (!Array.isArray(ports)) {
    throw new TypeError("--param ports must be a JSON array of port numbers");
  }
  const timeout = params.timeoutMs || 1000;
  const summary = { host, open: [], closed: 0, filtered: 0 };
  let shown = -1; // The last whole percent written as progress.
  ports.forEach((port, i) => {
    const r = tcp.connect(host, port, { timeout });
    emit({ host, port, status: r.status, rttMs: r.rttMs });
    if (r.status === "open") summary.open.push(port);
    else summary[r.status]++;
    const percent = (100 * (i + 1)) / ports.length;
    if (Math.floor(percent) !== shown) {
      shown = Math.floor(percent);
      writeProgress(percent, host + ":" + port);
    }
  });
  return summary;
};
