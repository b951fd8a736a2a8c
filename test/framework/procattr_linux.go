package framework

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child process end when the test process does, even when a test binary is killed
// by its timeout before it can stop what it started.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
