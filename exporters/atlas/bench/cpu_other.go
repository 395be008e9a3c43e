//go:build !unix

package main

import "time"

// processCPU is not measured outside Unix; CPU columns then read 0.
func processCPU() time.Duration { return 0 }
