// Package rtsptest runs scripts/rtsp-server.py (GStreamer's RTSP server, from
// Debian packages) for tests that need a real network camera they can kill and
// restart. When the server cannot run here (no Python GStreamer bindings, no
// video to serve) it stops the test through realpart: a skip locally, a
// failure under CI or OSPREY_REQUIRE_PARTS=1.
package rtsptest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/modroot"
	"github.com/osprey-vision/osprey/internal/realpart"
	"github.com/osprey-vision/osprey/internal/syncbuf"
)

// Server is one running rtsp-server.py serving a file in a loop at
// rtsp://127.0.0.1:PORT/cam.
type Server struct {
	cmd  *exec.Cmd
	port int
}

// Start starts the server on port serving file and waits until it serves.
// The server is killed when the test ends.
func Start(t testing.TB, port int, file string) *Server {
	t.Helper()
	return StartCodec(t, port, file, "h264")
}

// StartCodec is Start with the codec the camera sends: h264, or mjpeg (a
// camera without H.264).
func StartCodec(t testing.TB, port int, file, codec string) *Server {
	t.Helper()
	realpart.File(t, realpart.SampleVideo, file)
	realpart.File(t, realpart.RTSPServer, "/usr/bin/python3")
	cmd := exec.Command("/usr/bin/python3", filepath.Join(repoRoot(t), "scripts", "rtsp-server.py"),
		"--port", fmt.Sprint(port), "--file", file, "--codec", codec)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, port: port}
	t.Cleanup(s.Kill)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ready <- sc.Scan() && sc.Text() == "ready"
		for sc.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			if msg := stderr.String(); strings.Contains(msg, "No module named 'gi'") || strings.Contains(msg, "GstRtspServer") {
				realpart.Missing(t, realpart.RTSPServer, msg)
			}
			t.Fatalf("rtsp-server.py did not start: %s", stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("rtsp-server.py not ready after 15s: %s", stderr.String())
	}
	return s
}

// URL returns the stream's URL.
func (s *Server) URL() string { return fmt.Sprintf("rtsp://127.0.0.1:%d/cam", s.port) }

// Kill stops the server the hard way, like a crash: no RTSP TEARDOWN. Safe
// to call twice.
func (s *Server) Kill() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Signal sends sig to the server process (SIGSTOP freezes it: a camera that
// keeps its connection open and sends nothing).
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// repoRoot is the directory holding go.mod, found from the working directory.
func repoRoot(t testing.TB) string {
	root, err := modroot.FromWorkingDir()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
