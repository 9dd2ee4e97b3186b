//go:build !unix

package mcpproxy

import (
	"os"
	"os/exec"
)

func isolate(*exec.Cmd) {}

func signalGroup(cmd *exec.Cmd, _ os.Signal) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}

var (
	sigTerm = os.Kill
	sigKill = os.Kill
)
