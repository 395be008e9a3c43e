//go:build linux && !amd64 && !arm64

package atomicfile

// sysSyncfs is 0 where the number is not known here; syncfs falls back to
// sync(2).
const sysSyncfs = 0

// sysRenameat2 is 0 where the number is not known here; Exchange then
// reports ErrExchangeUnsupported.
const sysRenameat2 = 0
