// filesizes.js — the total size of every directory read from the input.
//
//   rsh run examples/filesizes.js --allow-read=. <<< '"."'
//
// Each input is a directory path (a JSON string, or a plain line). The
// output is {path, files, dirs, bytes}: how many files and directories are
// below it, recursively, and the sum of the files' sizes. fs.walk lists the
// path itself first, with the size of its whole tree.
const fs = require("fs");

module.exports = function (dir) {
  const entries = fs.walk(dir);
  const total = { path: dir, files: 0, dirs: 0, bytes: entries[0].size };
  for (const entry of entries.slice(1)) {
    if (entry.isDir) total.dirs++;
    else total.files++;
  }
  return total;
};
