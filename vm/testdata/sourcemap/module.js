module.exports = 3
//# sourceMappingURL=fifo
