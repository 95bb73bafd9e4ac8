// Allocation patterns for scripts/membombs.sh: each item names one and
// allocates that way until something stops it.
module.exports = (kind) => {
  const keep = [];
  switch (kind) {
    case "small": for (;;) keep.push("x".repeat(1 << 10) + keep.length);
    case "mib": for (;;) keep.push("x".repeat(1 << 20) + keep.length);
    case "big": for (;;) keep.push("x".repeat(64 << 20) + keep.length);
    case "array": for (;;) keep.push(new Array(1 << 20).fill(keep.length));
    case "fill": return new Array(1e9).fill(0).length;
    case "double": { let s = "x"; for (;;) s = s + s; }
  }
};
