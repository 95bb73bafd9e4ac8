// The price of an order: the catalogue's unit price times the quantity,
// less the user's discount, rounded to cents.
const { price } = require("catalogue");
(order) => {
  const user = lookupUser(order.user);
  const total = price(order.item) * order.qty * (1 - user.discount);
  return Math.round(total * 100) / 100;
}
