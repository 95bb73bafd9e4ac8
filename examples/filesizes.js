// filesizes.js — the total size of every directory read from the input.
//
//   rsh run examples/filesizes.js --allow-read=. <<< '"."'
//
// Each input is a directory path (a JSON string, or a plain line). The
// output is {path, files, dirs, bytes}: the files and directories under it,
// recursively, and the sum of the files' sizes.
const fs = require("fs");

module.exports = function (dir) {
  const total = { path: dir, files: 0, dirs: 0, bytes: 0 };
  for (const entry of fs.walk(dir)) {
    if (entry.path === dir || entry.isDir && entry.size === undefined) continue;
    if (entry.isDir) {
      total.dirs++;
    } else {
      total.files++;
      total.bytes += entry.size;
    }
  }
  return total;
};
