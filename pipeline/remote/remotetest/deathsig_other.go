//go:build !linux

package remotetest

import "os/exec"

// dieWithParent does nothing where the kernel cannot signal a child when
// its parent dies; the test's cleanup stops nginx.
func dieWithParent(*exec.Cmd) {}
