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
  // The plain form through values that are not plain data: a getter, a
  // proxy, a boxed value, toJSON, and a cycle that the text may or may
  // not reach.
  t(function () {
    var o = {get g() { return v; }, p: new Proxy({x: v}, {}), b: Object(v), j: {toJSON: function (k) { return [k, v]; }}};
    if (v !== null && typeof v === "object") v.back = o;
    try { return JSON.stringify([v, o]); } finally { if (v !== null && typeof v === "object") delete v.back; }
  });
  t(function () { return JSON.stringify(v, ["a", "b", "0", "é"], "\t"); });
  t(function () { return JSON.stringify(v, function (k, x) { return typeof x === "number" ? x + 1 : x; }); });
  t(function () { return JSON.stringify(JSON.parse(s, function (k, x) { return Array.isArray(x) ? x.length : x; })); });
  return out.join("\n");
}
