// batch.js — memory-efficient batch processing.
//
//   seq 1 10000 | rsh run examples/batch.js --batch-size 100 --throttle 4 --summary
//
// The PowerShell original, Invoke-OptimizedParallelProcessing, splits a
// large input into batches, runs them with a limit, shows progress and
// ends with a summary. Here rsh does the splitting (--batch-size), the
// limit (--throttle), the progress bar (--progress, on at a terminal) and
// the summary (--summary); the script gets one array per call, the shape
// of bulk work (one API call or one file write per batch).
//
// Each element is processed on its own: its result is emitted, and an
// element that fails is reported with writeError, which marks the batch's
// record as Error without losing the other elements' results. A throw
// would fail the whole batch.
module.exports = function (batch, params) {
  const failEvery = params.failEvery || 0; // --param failEvery=N to see failures
  let sum = 0;
  for (const n of batch) {
    if (typeof n !== "number") {
      writeError("not a number: " + JSON.stringify(n));
      continue;
    }
    if (failEvery && n % failEvery === 0) {
      writeError("item " + n + " failed");
      continue;
    }
    const square = n * n;
    sum += square;
    emit(square);
  }
  writeProgress(100, "batch starting at " + batch[0]);
  writeVerbose("batch of " + batch.length + " done, sum " + sum);
};
