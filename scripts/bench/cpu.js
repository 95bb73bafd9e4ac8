// cpu.js — the cpu workload of scripts/bench: 100,000 steps of a
// Lehmer (MINSTD) generator seeded with the item, returning the last value.
// Every intermediate stays below 2^53, so goja, V8 and the Go checker
// compute the same integers.
//
// It works as an rsh script (module.exports), as a piscina worker's
// require() target (module.exports) and for the limit program, which runs
// it in a bare runtime where `module` is undefined and takes the last
// expression instead.
const cpu = function (n) {
  let x = n % 2147483647;
  if (x === 0) x = 1;
  for (let i = 0; i < 100000; i++) {
    x = (x * 48271 + i) % 2147483647;
  }
  return x;
};
if (typeof module !== "undefined") module.exports = cpu;
cpu;
