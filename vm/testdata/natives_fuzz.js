// check(s) parses s and writes the result back in several ways; the fuzz
// test runs it in a plain goja runtime and in a runspace and wants the
// same text from both.
function check(s) {
  var out = [];
  function t(f) {
    try {
      out.push(String(f()));
    } catch (e) {
      out.push("threw " + e.name + ": " + e.message);
    }
  }
  var v;
  t(function () { v = JSON.parse(s); return "parsed"; });
  t(function () { return JSON.stringify(v); });
  t(function () { return JSON.stringify(v, null, 2); });
  t(function () { return JSON.stringify(v, ["a", "b", "0", "é"], "\t"); });
  t(function () { return JSON.stringify(v, function (k, x) { return typeof x === "number" ? x + 1 : x; }); });
  t(function () { return JSON.stringify(JSON.parse(s, function (k, x) { return Array.isArray(x) ? x.length : x; })); });
  return out.join("\n");
}
