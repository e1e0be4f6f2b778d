package record

import (
	"context"
	"os/exec"
	"syscall"
)

// command is exec.CommandContext for the recorder's ffmpeg and ffprobe
// children, each in its own process group: Ctrl-C in a terminal signals the
// whole foreground group, and the sink, not the terminal, decides how its
// children stop (the copy child finishes its segment, a clip being cut
// completes).
func command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}
