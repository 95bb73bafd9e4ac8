// A reducer that counts items by status and sums the output values.
module.exports = (n) => n * 2;
module.exports.reduce = {
  init: (params) => ({ items: 0, failed: 0, sum: params.start }),
  add(acc, record) {
    acc.items++;
    if (record.status !== "Success") acc.failed++;
    for (const v of record.output) acc.sum += v;
    if (record.seq === 2) console.log("saw", record.seq);
  },
  done: (acc, params) => ({ ...acc, label: params.label }),
};
