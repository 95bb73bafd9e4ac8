module.exports = () => { throw new Error("here") }
//# sourceMappingURL=mapped.js.map
