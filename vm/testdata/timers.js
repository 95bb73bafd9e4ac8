// An async function that waits on setTimeout, setInterval and setImmediate.
module.exports = async function (item) {
  const order = [];
  await new Promise((resolve) => setTimeout(resolve, 20));
  order.push("timeout");
  await new Promise((resolve) => {
    let ticks = 0;
    const id = setInterval(() => {
      ticks++;
      if (ticks === 3) {
        clearInterval(id);
        resolve();
      }
    }, 5);
  });
  order.push("interval");
  await new Promise((resolve) => setImmediate(resolve));
  order.push("immediate");
  const cancelled = setTimeout(() => order.push("never"), 1);
  clearTimeout(cancelled);
  await new Promise((resolve) => setTimeout(resolve, 10));
  return order.join(",") + ":" + item;
};
