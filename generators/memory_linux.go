package generators

import "syscall"

// addressSpaceLimit returns the soft RLIMIT_AS (what ulimit -v sets), and
// false when it is unlimited or cannot be read.
func addressSpaceLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &rl); err != nil || rl.Cur == ^uint64(0) {
		return 0, false
	}
	return rl.Cur, true
}
