//go:build !linux

package framework

import "os/exec"

// dieWithParent is only available on Linux; elsewhere Stop must be reached.
func dieWithParent(*exec.Cmd) {}
