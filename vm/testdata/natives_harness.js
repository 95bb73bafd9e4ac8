// Loaded into a plain goja runtime and into a runspace before each case of
// natives_cases.js; the two must give the same text. log collects what the
// case's callbacks (getters, toJSON, replacers, revivers, proxy traps) saw,
// in order, so calls into the script are compared too.
var log = [];
function q(s) { return '"' + String(s) + '"' }
// show describes a value without JSON or join, which are under test.
function show(v) {
  if (v === null) return "null";
  if (Object.is(v, -0)) return "-0";
  if (typeof v !== "object") return typeof v + ":" + String(v);
  var s = Array.isArray(v) ? "[" : "{";
  var keys = Object.keys(v);
  for (var i = 0; i < keys.length; i++) {
    if (i > 0) s += ",";
    s += q(keys[i]) + ":" + show(v[keys[i]]);
  }
  s += Array.isArray(v) ? "]" : "}";
  var p = Object.getPrototypeOf(v);
  if (p !== Object.prototype && p !== Array.prototype) s += "!proto";
  return s;
}
function run(f) {
  log = [];
  var out;
  try {
    out = f();
    out = typeof out === "string" ? "string:" + out : show(out);
  } catch (e) {
    out = "threw " + (e instanceof Error ? e.name + ": " + e.message : show(e));
  }
  var l = "";
  for (var i = 0; i < log.length; i++) l += (i > 0 ? " | " : "") + String(log[i]);
  return out + "\nlog: " + l;
}
