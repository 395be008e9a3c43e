//go:build !linux

package generators

// addressSpaceLimit reports no address-space limit: kiln reads it, and
// the process's virtual size it is compared with, on Linux only.
func addressSpaceLimit() (uint64, bool) { return 0, false }
