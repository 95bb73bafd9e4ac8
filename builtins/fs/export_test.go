package fs

// SetAfterCheck sets the hook that runs between a permission check and the
// operation it allowed (nil removes it).
func SetAfterCheck(f func()) { afterCheck = f }
