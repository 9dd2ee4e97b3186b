//go:build unix && !linux

package mcpproxy

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
