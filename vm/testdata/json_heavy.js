// The JSON-heavy benchmark workload: per item, parse the item's string
// field ten times and stringify objects ten times.
(item) => {
  let n = 0;
  for (let i = 0; i < 10; i++) {
    const o = JSON.parse(item.payload);
    o.id += i;
    n += JSON.stringify(o).length;
  }
  return n;
}
