// The item function of the kill/resume rounds of scripts/faults.sh.
//
// Each input item gives exactly one output, {"in": item, "x": n*n}, where n
// is the item if it is a number and its length if it is a string: the
// checker counts outputs per input and recomputes x to catch a garbled
// line. Items sleep 2-6 ms so that a kill lands in the middle of a run.
// With --batch-size the function gets an array and emits one output per
// element, in order.
//
// With params.failDir set (the --retries rounds), an attempt that meets an
// item whose n is a multiple of 3 and has no marker file in failDir writes
// the markers of every such item it holds and throws: each item fails its
// first attempt only, whichever runspace or run retries it, and the
// outputs stay the same.
const fs = require('fs');

const measure = (item) => (typeof item === 'number' ? item : String(item).length);

module.exports = function (input, params) {
  const items = Array.isArray(input) ? input : [input];
  if (params.failDir) {
    const fresh = items.filter(
      (it) => measure(it) % 3 === 0 && !fs.exists(params.failDir + '/' + it),
    );
    if (fresh.length > 0) {
      for (const it of fresh) fs.writeFile(params.failDir + '/' + it, '');
      throw new Error('first attempt at ' + fresh.join(',') + ' fails on purpose');
    }
  }
  for (const it of items) {
    const n = measure(it);
    sleep(2 + (n % 5));
    emit({ in: it, x: n * n });
  }
};
