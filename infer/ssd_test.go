package infer

import (
	"os"
	"testing"
)

// requireSSD skips when the imported COCO SSD is not there yet; it is built
// by `pipeline model import --from tfjs ... --out models/ssd_mobilenet_v2_coco.onnx`.
func requireSSD(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(ssdPath); err != nil {
		t.Skipf("%s missing: run pipeline model import --from tfjs third_party/coco-ssd/models/coco-ssd/model.json --out models/ssd_mobilenet_v2_coco.onnx", ssdPath)
	}
}
