package realpart

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// recorder is a testing.TB that records how Missing stopped it.
type recorder struct {
	testing.TB
	how, msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.how, r.msg = "fail", fmt.Sprintf(format, args...)
}
func (r *recorder) Skipf(format string, args ...any) {
	r.how, r.msg = "skip", fmt.Sprintf(format, args...)
}

func TestMissingFailsOnlyWhenRequired(t *testing.T) {
	for _, tc := range []struct {
		name, ci, require, how, extra string
	}{
		{name: "local", how: "skip", extra: "(skipped; with CI=true or OSPREY_REQUIRE_PARTS=1 this fails)"},
		{name: "ci", ci: "true", how: "fail", extra: "(a required part: CI or OSPREY_REQUIRE_PARTS=1 is set, so this fails instead of skipping)"},
		{name: "ci=1", ci: "1", how: "fail"},
		{name: "ci wins over opt-out", ci: "true", require: "0", how: "fail"},
		{name: "ci=false", ci: "false", how: "skip"},
		{name: "test.sh default", require: "1", how: "fail"},
		{name: "local opt-out", require: "0", how: "skip"},
		{name: "typo", require: "yes please", how: "fail",
			extra: `(OSPREY_REQUIRE_PARTS="yes please" is not a boolean: set it to 1 (missing parts fail) or 0 (they skip))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			t.Setenv(Env, tc.require)
			r := &recorder{}
			Missing(r, NATSServer, "stat /usr/sbin/nats-server: no such file or directory")
			require.Equal(t, tc.how, r.how)
			require.Contains(t, r.msg, "missing real part: nats-server binary (/usr/sbin/nats-server): "+
				"stat /usr/sbin/nats-server: no such file or directory; "+
				"set it up with: apt-get install nats-server (scripts/setup.sh does it)")
			require.Contains(t, r.msg, tc.extra)
		})
	}
}

func TestFileAndCommand(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(Env, "1")
	r := &recorder{}
	File(r, SampleVideo, t.TempDir())
	require.Empty(t, r.how, "an existing path is present")
	File(r, SampleVideo, "/nonexistent/vtest.avi")
	require.Equal(t, "fail", r.how)
	require.Contains(t, r.msg, "missing real part: OpenCV sample video (Debian opencv-doc): stat /nonexistent/vtest.avi: no such file or directory; set it up with: apt-get install opencv-doc")

	r = &recorder{}
	require.Equal(t, "/bin/sh", Command(r, FFmpeg, "/bin/sh"))
	require.Empty(t, r.how)
	require.Empty(t, Command(r, FFmpeg, "osprey-no-such-tool"))
	require.Equal(t, "fail", r.how)
	require.Contains(t, r.msg, `missing real part: ffmpeg: exec: "osprey-no-such-tool": executable file not found in $PATH; set it up with: apt-get install ffmpeg`)
}
