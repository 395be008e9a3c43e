//go:build unix

package sampler_test

import "syscall"

// processCPU returns the user+system CPU time this process has used, in
// nanoseconds, so benchmarks can report a cost that does not depend on how
// busy the (shared) machine is.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
