package capture

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/osprey-vision/osprey/internal/matcheck"
)

// udpSockets counts this process's open UDP sockets (Linux /proc).
func udpSockets(t *testing.T) int {
	t.Helper()
	inodes := map[string]bool{}
	for _, tab := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		f, err := os.Open(tab)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) > 9 {
				inodes[fs[9]] = true
			}
		}
		f.Close()
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		// Capture's targets are Linux; without /proc this check cannot count sockets.
		t.Fatalf("count open sockets: %v (this test needs Linux /proc)", err)
	}
	n := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if in, ok := strings.CutPrefix(l, "socket:["); ok && inodes[strings.TrimSuffix(in, "]")] {
			n++
		}
	}
	return n
}

// TestRTSPTransport checks that tcp: true really carries RTP over the RTSP
// TCP connection and tcp: false lets FFmpeg use UDP, i.e. that the options
// reach OpenCV's FFmpeg backend.
func TestRTSPTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("live RTSP server test")
	}
	srv := startRTSP(t, freePort(t))
	for _, tcp := range []bool{true, false} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			matcheck.Leaks(t)
			before := udpSockets(t)
			cfg := rtspConfig(srv.URL())
			cfg.TCP = tcp
			src := mustNew(t, cfg, nil)
			defer src.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := src.Connect(ctx); err != nil {
				t.Fatal(err)
			}
			f, err := src.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			f.Release()
			udp := udpSockets(t) - before
			t.Logf("%d new UDP sockets", udp)
			if tcp && udp != 0 {
				t.Errorf("tcp: true opened %d UDP sockets, want 0", udp)
			}
			if !tcp && udp == 0 && !userFFmpegOptionsSet { // the user's own options win
				t.Error("tcp: false opened no UDP socket; FFmpeg should use UDP first")
			}
		})
	}
}
