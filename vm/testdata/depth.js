// Builders for the depth tests: values and JSON text nested exactly n deep.
function nestedArray(n) {
  let a = [];
  for (let i = 1; i < n; i++) a = [a];
  return a;
}
function nestedObject(n) {
  let o = {};
  for (let i = 1; i < n; i++) o = {a: o};
  return o;
}
function nestedText(n) {
  return "[".repeat(n) + "]".repeat(n);
}
// thrown runs f and returns what it threw, as "Name: message", or "none".
function thrown(f) {
  try {
    f();
  } catch (e) {
    return e.name + ": " + e.message;
  }
  return "none";
}
