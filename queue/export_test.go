package queue

// ItemID exposes itemID to the tests, which store records under an
// item's subject as a worker would.
var ItemID = itemID
