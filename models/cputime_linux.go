//go:build linux

package models

import (
	"syscall"
	"time"
	"unsafe"
)

// Linux's CPU-time clocks.
const (
	clockProcessCPUTimeID = 2 // CLOCK_PROCESS_CPUTIME_ID
	clockThreadCPUTimeID  = 3 // CLOCK_THREAD_CPUTIME_ID
)

// threadCPU returns the CPU time the calling OS thread has used, or 0 if
// the clock cannot be read. The caller locks its goroutine to the thread
// between two readings.
func threadCPU() time.Duration { return clockCPU(clockThreadCPUTimeID) }

func clockCPU(clock uintptr) time.Duration {
	var ts syscall.Timespec
	_, _, errno := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}

// processCPU returns the CPU time the process has used, all threads
// together, or 0 if it cannot be read. It reads the same scheduler clock
// as threadCPU (getrusage's user and system split is estimated from ticks
// and drifts from it by about a percent).
func processCPU() time.Duration { return clockCPU(clockProcessCPUTimeID) }
