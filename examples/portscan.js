// portscan.js — a TCP connect scan, one host per input line: the seed's
// network scanner.
//
//   rsh run examples/portscan.js --allow-net=127.0.0.1 \
//       --param ports='[22,80,8080]' --param timeoutMs=500 < hosts.txt
//
// For every port it emits {host, port, status, rttMs} where status has
// nmap's meanings: "open" (connected), "closed" (refused), "filtered" (no
// answer before timeoutMs, or the host or network unreachable; error says
// which). A host whose name does not resolve gets {host, port, status:
// "error", rttMs: null, error} for each port, a warning, and the scan goes
// on with the other hosts. Then it returns a summary of the host:
// {host, open: [ports], closed, filtered, errors}. (The seed has closed
// and filtered swapped: it calls a refused port filtered.)
//
// After the last host, the reducer below writes the scan's summary with
// the seed's fields: {HostsScanned, TotalHosts, OpenPorts, ClosedPorts,
// FilteredPorts, Errors}: the last line of --out values or json, a record
// marked "summary": true with --out records.
//
// A denied host (--allow-net does not cover it) is not a property of the
// network but of the command line: it fails the host's item, loudly, and
// counts in TotalHosts, not HostsScanned. So does a bad port number.
//
// Hosts run in parallel (--throttle); the ports of one host run one after
// the other so that a host is never flooded, and a name is looked up once
// per host. A host on the network keeps its item waiting for answers, not
// computing, so give many hosts a --throttle of tens or hundreds: the
// default, one per CPU, suits work that computes. (On loopback the answer
// is there when connect returns, and the throttle changes nothing.)
//
// Progress is written at most once per whole percent of a host's ports,
// so that a long list (all 65,535) stays within --max-messages.
const tcp = require("tcp");

// The seed's ports: ssh, http, msrpc, netbios-ssn, https, microsoft-ds,
// rdp, and WinRM over http and https.
const defaultPorts = [22, 80, 135, 139, 443, 445, 3389, 5985, 5986];

module.exports = function (host, params) {
  if (typeof host !== "string" || host === "") {
    throw new TypeError("want a host name or address, got " + JSON.stringify(host));
  }
  const ports = params.ports || defaultPorts;
  if (!Array.isArray(ports)) {
    throw new TypeError("--param ports must be a JSON array of port numbers");
  }
  const timeout = params.timeoutMs || 1000;
  const summary = { host, open: [], closed: 0, filtered: 0, errors: 0 };
  let shown = -1; // The last whole percent written as progress.
  let lookupFailed = false;
  ports.forEach((port, i) => {
    let r;
    try {
      r = tcp.connect(host, port, { timeout });
    } catch (e) {
      // Only a name that does not resolve is the target's answer; the
      // rest (PermissionDenied, a bad port, a stopped item) fails the item.
      if (e.name !== "LookupError") throw e;
      r = { status: "error", rttMs: null, error: e.message };
      if (!lookupFailed) writeWarning(e.message);
      lookupFailed = true;
    }
    const out = { host, port, status: r.status, rttMs: r.rttMs };
    if (r.status === "filtered" || r.status === "error") out.error = r.error;
    emit(out);
    if (r.status === "open") summary.open.push(port);
    else if (r.status === "error") summary.errors++;
    else summary[r.status]++;
    const percent = (100 * (i + 1)) / ports.length;
    if (Math.floor(percent) !== shown) {
      shown = Math.floor(percent);
      writeProgress(percent, host + ":" + port);
    }
  });
  return summary;
};

// The scan's summary, folded from every host's result record in one extra
// runspace (see "The script contract" in docs/design.md).
module.exports.reduce = {
  init: () => ({ HostsScanned: 0, TotalHosts: 0, OpenPorts: 0, ClosedPorts: 0, FilteredPorts: 0, Errors: 0 }),
  add(acc, record) {
    acc.TotalHosts++;
    if (record.status === "Success" || record.status === "Error") acc.HostsScanned++;
    for (const v of record.output) {
      if (v === null || typeof v !== "object" || !("port" in v)) continue; // the host's summary
      if (v.status === "open") acc.OpenPorts++;
      else if (v.status === "closed") acc.ClosedPorts++;
      else if (v.status === "filtered") acc.FilteredPorts++;
      else acc.Errors++;
    }
  },
};
