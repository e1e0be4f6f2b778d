#!/usr/bin/python3
"""Test RTSP server for Osprey's capture tests (GStreamer's RTSP server).

Serves a video file, looped and re-encoded to H.264, at rtsp://127.0.0.1:PORT/cam.
Prints "ready" on stdout once it listens. Run it with Debian's /usr/bin/python3,
which has the GStreamer GI bindings:

    /usr/bin/python3 scripts/rtsp-server.py --port 8554 --file vtest.avi
"""
import argparse
import os
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8554)
    p.add_argument("--file", required=True, help="video file to serve, looped")
    p.add_argument("--mount", default="/cam")
    p.add_argument("--codec", default="h264", choices=["h264", "mjpeg"],
                   help="what the camera sends (mjpeg: a camera without H.264)")
    a = p.parse_args()
    if not os.path.isfile(a.file):
        sys.exit("rtsp-server: no such file %r" % a.file)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    factory = GstRtspServer.RTSPMediaFactory()
    loc = a.file.replace("\\", "\\\\").replace('"', '\\"')
    enc = {
        "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96",
        "mjpeg": "jpegenc quality=80 ! rtpjpegpay name=pay0 pt=26",
    }[a.codec]
    factory.set_launch(
        '( multifilesrc location="%s" loop=true ! decodebin ! videoconvert ! %s )' % (loc, enc)
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(a.mount, factory)
    if server.attach(None) == 0:
        sys.exit("rtsp-server: cannot listen on port %d" % a.port)

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
