// Writes to every stream, emits two values and returns a third.
module.exports = function (item, params) {
  emit(item, { n: item, tag: params.tag });
  writeWarning("warn " + item);
  writeVerbose("verbose " + item);
  console.log("log", item);
  console.info("info", item);
  console.debug("debug", item);
  console.warn("cwarn", item);
  writeProgress(50, "half");
  return "done";
};
