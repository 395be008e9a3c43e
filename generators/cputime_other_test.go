//go:build !unix

package generators_test

// processCPU is unknown on this platform; benchmarks report 0.
func processCPU() int64 { return 0 }
