// driver.js — the piscina peer of scripts/bench: reads items from stdin, one
// per line, runs each as a task in a piscina pool and writes each result on
// a line of stdout (in completion order, as rsh does without --keep-order).
//
//   node driver.js --task square|cpu|io|json --threads N
//                  [--concurrency C] [--cpu-file /abs/cpu.js]
//
// --threads is the pool's size (min = max, so start-up is paid once);
// --concurrency is the number of tasks in flight at once, spread over the
// threads with concurrentTasksPerWorker (for io; default one per thread).
// Reading stops while enough tasks are queued, so memory stays bounded
// however long the input is.
"use strict";
const path = require("path");
const readline = require("readline");
const { Piscina } = require("piscina");

function parseArgs(argv) {
  const a = { task: "square", threads: 2, concurrency: 0, cpuFile: "" };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case "--task": a.task = v; i++; break;
      case "--threads": a.threads = Number(v); i++; break;
      case "--concurrency": a.concurrency = Number(v); i++; break;
      case "--cpu-file": a.cpuFile = path.resolve(v); i++; break;
      default: throw new Error("driver.js: unknown argument " + argv[i]);
    }
  }
  if (!["square", "cpu", "io", "json"].includes(a.task)) {
    throw new Error("driver.js: unknown task " + a.task);
  }
  if (a.task === "cpu" && !a.cpuFile) throw new Error("driver.js: --task cpu needs --cpu-file");
  return a;
}

// queuedPerThread is how many tasks may wait per thread beyond those
// running: enough that a thread never idles waiting for the reader, few
// enough that the queue stays small.
const queuedPerThread = 64;

// flushAt is how many result lines are joined into one write.
const flushAt = 4096;

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const perWorker = a.concurrency > 0 ? Math.ceil(a.concurrency / a.threads) : 1;
  const pool = new Piscina({
    filename: path.join(__dirname, "worker.js"),
    minThreads: a.threads,
    maxThreads: a.threads,
    concurrentTasksPerWorker: perWorker,
    // Async tasks (io) keep timers open between tasks; sync atomics would
    // park the thread and starve them.
    atomics: a.task === "io" ? "async" : "sync",
    workerData: { cpuFile: a.cpuFile },
  });
  const limit = a.threads * perWorker + a.threads * queuedPerThread;

  let out = [];
  const flush = async () => {
    if (out.length === 0) return;
    const chunk = out.join("\n") + "\n";
    out = [];
    if (!process.stdout.write(chunk)) {
      await new Promise((r) => process.stdout.once("drain", r));
    }
  };

  let inflight = 0;
  let wake = null;
  let failed = null;
  const done = (v) => {
    out.push(String(v));
    inflight--;
    if (wake) { const w = wake; wake = null; w(); }
  };
  const fail = (err) => {
    failed = failed || err;
    inflight--;
    if (wake) { const w = wake; wake = null; w(); }
  };

  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (line === "") continue;
    const item = a.task === "json" ? line : Number(line);
    inflight++;
    pool.run(item, { name: a.task }).then(done, fail);
    while (inflight >= limit) await new Promise((r) => { wake = r; });
    if (out.length >= flushAt) await flush();
    if (failed) break;
  }
  while (inflight > 0) {
    await new Promise((r) => { wake = r; });
    if (out.length >= flushAt) await flush();
  }
  await flush();
  await pool.destroy();
  if (failed) throw failed;
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
