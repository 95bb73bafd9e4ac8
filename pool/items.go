package pool

import "iter"

// Items returns the values of a slice as a sequence of items for Run.
func Items[T any](values []T) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for _, v := range values {
			if !yield(Item{Value: v}) {
				return
			}
		}
	}
}

// Chan returns the values received from ch, until it is closed, as a
// sequence of items for Run.
func Chan[T any](ch <-chan T) iter.Seq[Item] {
	return func(yield func(Item) bool) {
		for v := range ch {
			if !yield(Item{Value: v}) {
				return
			}
		}
	}
}
