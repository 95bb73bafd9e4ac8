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
// element that fails is reported with writeError(message, index), the
// index being the element's position in the batch. The batch's record is
// then Error, keeps the other elements' results, and lists the failed
// elements in "elementErrors" ({"index", "error"}); the elements it does
// not list succeeded. A throw would fail every element of the batch.
//
// The summary counts items, as the original's does: with
//
//   seq 1 1000 | rsh run examples/batch.js --batch-size 100 --param failEvery=7 --summary
//
// it says 1000 items, 858 succeeded, 142 failed, in 10 batches of up to
// 100, a success rate of 85.8% and the items per second; --summary-json
// FILE writes the original's TotalItems, SuccessfulItems, ErrorItems,
// Batches, BatchSize and SuccessRate. --out records gives each batch's
// record, from which an element's seq is the batch's seq plus its index.
module.exports = function (batch, params) {
  const failEvery = params.failEvery || 0; // --param failEvery=N to see failures
  let sum = 0;
  batch.forEach((n, i) => {
    if (typeof n !== "number") {
      writeError("not a number: " + JSON.stringify(n), i);
      return;
    }
    if (failEvery && n % failEvery === 0) {
      writeError("item " + n + " failed", i);
      return;
    }
    const square = n * n;
    sum += square;
    emit(square);
  });
  writeProgress(100, "batch starting at " + batch[0]);
  writeVerbose("batch of " + batch.length + " done, sum " + sum);
};
