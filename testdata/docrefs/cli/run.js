// Statuses: see docs/design.md#exit-codes (from the root) and
// ../docs/design.md (from this folder); cli/DESIGN.md is not there.
