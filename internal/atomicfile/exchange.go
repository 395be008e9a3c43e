package atomicfile

import "errors"

// ErrExchangeUnsupported is returned by Exchange where the system or the
// file system cannot swap two paths atomically; callers fall back to two
// renames.
var ErrExchangeUnsupported = errors.New("atomic exchange of two paths is not supported here")
