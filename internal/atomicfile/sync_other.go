//go:build !unix

package atomicfile

// isNotSupported reports whether err says the file system cannot sync a
// folder. Outside Unix, folders generally cannot be synced at all.
func isNotSupported(err error) bool { return err != nil }
