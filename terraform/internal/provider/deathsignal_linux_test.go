package provider

import (
	"os/exec"
	"syscall"
)

// dieWithTests makes the dev process end when the test binary does, even
// when it is killed (a test timeout's panic skips TestMain's clean-up):
// its Postgres follows it on its own parent-death signal.
func dieWithTests(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
