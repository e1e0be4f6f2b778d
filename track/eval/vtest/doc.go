// Package vtest runs the real detector, the tracker and the analytics
// engine over OpenCV's vtest.avi (pedestrians, 768x576, 10 fps) to give a
// stability figure where no ground truth exists: how often an object that
// was being tracked reappears under a new ID. Its only content is a test:
//
//	go test ./track/eval/vtest -v -vtest -vtest.annotate=$PWD/docs/tracking-vtest.jpg
//
// Without -vtest it skips (it takes minutes on a small machine); it also
// skips when the COCO SSD has not been imported (pipeline model import).
// -vtest.dets=FILE caches the detections so tracker changes can be
// re-evaluated in seconds. It uses cgo (OpenCV, ONNX Runtime); the tracker does not.
package vtest
