package infer

import "github.com/osprey-vision/osprey/object"

// Detection is one object found in one image, in that image's pixel
// coordinates. It lives in package object so the pipeline's contracts carry
// it without linking ONNX Runtime.
type Detection = object.Detection
