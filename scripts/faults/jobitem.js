// The item function of the daemon kill/resume rounds of scripts/faults.sh.
//
// Each item gives itself back as its one output (with --batch-size the
// function gets an array and emits each element, in order), after a sleep
// of 0-3 ms so that a kill of the daemon lands in the middle of a job.
//
// With params.repeat set (the full-disk check), each item is emitted that
// many times: big results from a small input.
//
// With params.fail set (the --retries rounds), an item whose n is a
// multiple of params.fail throws at every attempt, before anything is
// emitted: it ends as an Exception whatever the retries, so the checker
// knows each record's status from its input. n is the item if it is a
// number, its "n" if it is an object, and its length otherwise.
const measure = (it) =>
  typeof it === 'number' ? it : it !== null && typeof it === 'object' ? it.n : String(it).length;

module.exports = function (input, params) {
  const items = Array.isArray(input) ? input : [input];
  const fail = Number(params.fail || 0);
  const repeat = Number(params.repeat || 1);
  if (fail > 0) {
    for (const it of items) {
      if (measure(it) % fail === 0) throw new Error('item ' + JSON.stringify(it) + ' fails on purpose');
    }
  }
  for (const it of items) {
    sleep(Math.floor(Math.random() * 4));
    for (let i = 0; i < repeat; i++) emit(it);
  }
};
