"""A tiny MJPEG-over-HTTP server (http.server in a thread): `/` is a page, `/stream.mjpg` the feed.

Binds to loopback unless the user names another address: a camera feed is not published by accident.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from edgeseg.core.errors import EdgesegError

log = logging.getLogger("edgeseg.runtime")
BOUNDARY = "edgesegframe"
_PAGE = b"""<!doctype html><html><head><title>edgeseg</title></head>
<body style="margin:0;background:#111;color:#ddd;font-family:sans-serif">
<p style="margin:8px">edgeseg live segmentation</p>
<img src="/stream.mjpg" style="max-width:100%" alt="stream"></body></html>
"""


def parse_address(text: str) -> tuple[str, int]:
    """'8080' -> ('127.0.0.1', 8080); 'HOST:PORT' as given (port 0 = any free port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise EdgesegError(f"--serve {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8080") from None
    if not 0 <= number <= 65535:
        raise EdgesegError(f"--serve {text!r}: port must be 0..65535")
    return host or "127.0.0.1", number


class MjpegServer:
    """Serves the latest published frame to every connected browser; `publish` never blocks."""

    def __init__(self, address: str = "127.0.0.1:8080", quality: int = 80) -> None:
        host, port = parse_address(address)
        self.quality = quality
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self._closed = False
        handler = self._handler_class()
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise EdgesegError(f"--serve {address}: cannot listen ({exc.strerror})") from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/"

    def publish(self, image: np.ndarray) -> None:
        """Encode and hand over a frame (BGR); viewers that are behind simply skip frames."""
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return
        with self._cond:
            self._jpeg = buf.tobytes()
            self._seq += 1
            self._cond.notify_all()

    def _next(self, seen: int) -> tuple[int, bytes | None]:
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seen or self._closed, timeout=1.0)
            return self._seq, (None if self._closed else self._jpeg)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", _PAGE)
                elif self.path.startswith("/stream.mjpg"):
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache, private")
                self.send_header("Pragma", "no-cache")
                self.end_headers()
                seen = -1
                try:
                    while True:
                        seen, jpeg = server._next(seen)
                        if server._closed:
                            return
                        if jpeg is None:
                            continue
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        self.wfile.write(head + jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return  # the viewer went away

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("mjpeg %s - %s", self.address_string(), format % args)

        return Handler
