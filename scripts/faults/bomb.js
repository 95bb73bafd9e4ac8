// The memory bomb of scripts/faults.sh: "grow" allocates without end,
// "fill" asks for an array of a billion numbers at once; anything else
// sleeps a little (so that it shares a worker with a bomb) and is returned.
module.exports = function (item) {
  if (item === 'grow') {
    const a = [];
    for (;;) a.push('x'.repeat(1 << 20));
  }
  if (item === 'fill') return new Array(1e9).fill(0).length;
  sleep(20);
  return item;
};
