// Package realpart says whether a real part a test needs (the ONNX Runtime
// library, an imported model, a sample video, a server binary, a browser) is
// present, and stops the test when it is not.
//
// On a developer's machine a missing part skips the test, with a message that
// names the part and the command that installs it. Where a skip must not pass
// for a green run it fails the test with the same message instead: when CI is
// set (CI=true, as CI services set it) or OSPREY_REQUIRE_PARTS=1, which
// scripts/test.sh exports by default. OSPREY_REQUIRE_PARTS=0 opts a local
// run out again; it does not override CI.
//
// Explicit opt-ins (a -vtest flag, OSPREY_VIEWER_LOAD=1, a child-process
// guard) are not missing parts and do not go through this package.
package realpart

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Part is one real component tests use, with the command that sets it up.
type Part struct {
	// Name says what is missing, in the words of the test log's reader.
	Name string
	// Setup is the command (or step) that installs or builds it.
	Setup string
}

// The parts Osprey's tests use. scripts/setup.sh installs all of them except
// Root, which is how the tests are run.
var (
	// ORT is the ONNX Runtime shared library scripts/setup.sh unpacks into third_party/lib.
	ORT = Part{"ONNX Runtime library (libonnxruntime.so)", "scripts/setup.sh (or set ORT_LIB to libonnxruntime.so)"}
	// SSDModel is the COCO SSD imported from TF.js into models/ssd_mobilenet_v2_coco.onnx.
	SSDModel = Part{"imported COCO SSD model (models/ssd_mobilenet_v2_coco.onnx)",
		"scripts/setup.sh (pipeline model import --from tfjs third_party/coco-ssd/models/coco-ssd/model.json --out models/ssd_mobilenet_v2_coco.onnx)"}
	// COCOSSDGraph is the TF.js COCO SSD graph (third_party/coco-ssd) the importer reads.
	COCOSSDGraph = Part{"TF.js COCO SSD graph (third_party/coco-ssd)", "scripts/setup.sh"}
	// BlazeFace is the BlazeFace ONNX face detector in third_party/blazeface.
	BlazeFace = Part{"BlazeFace model (third_party/blazeface/ONNX)", "scripts/setup.sh"}
	// SampleVideo is OpenCV's sample videos (vtest.avi, Megamind.avi) from Debian's opencv-doc.
	SampleVideo = Part{"OpenCV sample video (Debian opencv-doc)", "apt-get install opencv-doc (scripts/setup.sh does it)"}
	// Chromium is Debian's headless browser at /usr/bin/chromium.
	Chromium = Part{"Chromium (/usr/bin/chromium)", "apt-get install chromium (scripts/setup.sh does it)"}
	// Node is the Node.js runtime that runs the TF.js reference and the browser driver.
	Node = Part{"Node.js (node on the PATH)", "apt-get install nodejs (scripts/setup.sh does it)"}
	// TFJSRef is the TF.js reference runner's node_modules.
	TFJSRef = Part{"TF.js reference runner (tools/tfjs-ref/node_modules)", "scripts/setup.sh (npm ci in tools/tfjs-ref)"}
	// BrowserDriver is the browser driver's node_modules (playwright-core).
	BrowserDriver = Part{"browser driver (tools/browser-test/node_modules/playwright-core)", "scripts/setup.sh (npm ci in tools/browser-test)"}
	// NATSServer is Debian's nats-server binary (a different version than the embedded one).
	NATSServer = Part{"nats-server binary (/usr/sbin/nats-server)", "apt-get install nats-server (scripts/setup.sh does it)"}
	// RTSPServer is GStreamer's RTSP server and its Python bindings, for scripts/rtsp-server.py.
	RTSPServer = Part{"GStreamer RTSP server for scripts/rtsp-server.py (/usr/bin/python3 with gi, GstRtspServer)",
		"apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly gstreamer1.0-libav (scripts/setup.sh does it)"}
	// FFmpeg is the ffmpeg command line tool.
	FFmpeg = Part{"ffmpeg", "apt-get install ffmpeg (scripts/setup.sh does it)"}
	// MosquittoClients are Debian's mosquitto_sub and mosquitto_pub, the
	// reference MQTT clients.
	MosquittoClients = Part{"Mosquitto clients (mosquitto_sub, mosquitto_pub)", "apt-get install mosquitto-clients (scripts/setup.sh does it)"}
	// Root is the privilege to mount a small tmpfs to fill (disk-full tests).
	Root = Part{"root (to mount a small tmpfs)", "run the test as root (sudo -E go test ...) or in a container with CAP_SYS_ADMIN"}
)

// Env names the variable that makes missing parts fail a local run.
const Env = "OSPREY_REQUIRE_PARTS"

// Required reports whether a missing part fails the test (true) or skips it.
// It returns an error naming the variable when CI or OSPREY_REQUIRE_PARTS
// holds a value that is not a boolean, so a typo is not read as "skip".
func Required() (bool, error) {
	if v := os.Getenv("CI"); v != "" {
		// CI services set CI=true (some CI=1); anything but an explicit false counts.
		if b, err := strconv.ParseBool(v); err != nil || b {
			return true, nil
		}
	}
	v := os.Getenv(Env)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return true, fmt.Errorf("%s=%q is not a boolean: set it to 1 (missing parts fail) or 0 (they skip)", Env, v)
	}
	return b, nil
}

// Missing stops t because p is missing; why says what was looked for or what
// failed (an error, a path). It fails t when Required, and skips it otherwise.
func Missing(t testing.TB, p Part, why any) {
	t.Helper()
	msg := message(p, why)
	req, err := Required()
	switch {
	case err != nil:
		t.Fatalf("%s\n(%v)", msg, err)
	case req:
		t.Fatalf("%s\n(a required part: CI or %s=1 is set, so this fails instead of skipping)", msg, Env)
	default:
		t.Skipf("%s\n(skipped; with CI=true or %s=1 this fails)", msg, Env)
	}
}

func message(p Part, why any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "missing real part: %s", p.Name)
	if why != nil {
		if s := fmt.Sprint(why); s != "" {
			fmt.Fprintf(&b, ": %s", s)
		}
	}
	fmt.Fprintf(&b, "; set it up with: %s", p.Setup)
	return b.String()
}

// File stops t (see Missing) unless path, one file or directory of p, exists.
func File(t testing.TB, p Part, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, p, err)
	}
}

// Command returns the path of the executable name (a bare name is looked up on
// the PATH), or stops t (see Missing) when p's executable is not there.
func Command(t testing.TB, p Part, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, p, err)
		return ""
	}
	return path
}
