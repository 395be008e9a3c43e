package remotetest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes nginx's master end when the test process does, even
// one killed before its cleanups ran.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
