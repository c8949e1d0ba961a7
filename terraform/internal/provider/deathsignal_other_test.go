//go:build !linux

package provider

import "os/exec"

// dieWithTests has no parent-death signal to set outside Linux: TestMain's
// clean-up stops the dev process.
func dieWithTests(*exec.Cmd) {}
