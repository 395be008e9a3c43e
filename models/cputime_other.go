//go:build !linux

package models

import "time"

// threadCPU returns 0: kiln reads per-thread CPU time only on Linux.
func threadCPU() time.Duration { return 0 }

// processCPU returns 0: kiln reads process CPU time only on Linux.
func processCPU() time.Duration { return 0 }
