// Items are numbers, returned doubled, or words naming a hostile act.
module.exports = function (item) {
  switch (item) {
    case "grow": {
      // Allocates until something stops it.
      const keep = [];
      for (;;) keep.push("x".repeat(1 << 20) + keep.length);
    }
    case "huge":
      // One allocation far past any sane limit.
      return new Array(2e9).fill(0).length;
    case "stuck":
      // Backtracks in native code, where interrupts are not seen.
      return /(a*)*(?=x)b/.test("a".repeat(30));
    case "slow":
      sleep(300);
      return "slow";
  }
  return item * 2;
};
