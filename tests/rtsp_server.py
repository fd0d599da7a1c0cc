"""A tiny RTSP test server: a moving-ball H.264 stream on 127.0.0.1, for the RTSP source tests.

Run with Debian's Python (python3-gi and gir1.2-gst-rtsp-server-1.0 live there, not in the venv):

    /usr/bin/python3 tests/rtsp_server.py --port 8554 --path /test --fps 30 --size 320x240

It prints "ready" once the server is attached and serves until killed. The media is shared, so
every client sees the same live stream, and the encoder puts a key frame every second so a client
that (re)connects mid-stream decodes within a second.
"""

from __future__ import annotations

import argparse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/test")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="320x240", help="WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball "
        f"! video/x-raw,width={width},height={height},framerate={args.fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} "
        f"! rtph264pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
