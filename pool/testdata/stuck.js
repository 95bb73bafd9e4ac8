// Item "stuck" runs a regular expression that backtracks for a long time
// inside the engine's native code, where interrupts are not seen (the
// lookahead makes the engine use its backtracking matcher). Other items
// return their number.
module.exports = function (item) {
  if (item === "stuck") {
    return /(a*)*(?=x)b/.test("a".repeat(18));
  }
  return item;
};
