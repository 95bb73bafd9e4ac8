// worker.js — the piscina worker of scripts/bench. Each named export is one
// workload's function, the same transform rsh runs:
//
//   square  (n) => n * n                                  trivial
//   cpu     scripts/bench/cpu.js, required from workerData.cpuFile
//   io      waits 100 ms without blocking, returns n      io
//   json    parses an NDJSON line, sets seen, drops note,
//           returns the line re-encoded                   json
"use strict";
const { workerData } = require("piscina");

const cpu = workerData && workerData.cpuFile ? require(workerData.cpuFile) : null;

function square(n) {
  return n * n;
}

function io(n) {
  return new Promise((resolve) => setTimeout(() => resolve(n), 100));
}

function json(line) {
  const o = JSON.parse(line);
  o.seen = true;
  delete o.note;
  return JSON.stringify(o);
}

module.exports = { square, cpu, io, json };
