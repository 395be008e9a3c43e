//go:build !linux

package atomicfile

// Exchange would atomically swap the files or folders at a and b; outside
// Linux it always returns ErrExchangeUnsupported.
func Exchange(a, b string) error { return ErrExchangeUnsupported }
