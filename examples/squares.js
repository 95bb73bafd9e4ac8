// squares.js — the square of every number read from the input.
//
//   rsh run examples/squares.js examples/numbers.txt --throttle 10
//
// The PowerShell original: 1..100 | ForEach-Object -Parallel { $_ * $_ }
module.exports = function (num) {
  if (typeof num !== "number") {
    throw new TypeError("want a number, got " + JSON.stringify(num));
  }
  return num * num;
};
