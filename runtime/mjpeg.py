"""A small MJPEG-over-HTTP server (standard library, threads): `/` is the live page, `/stream.mjpg`
the feed, `/stats` the live stats as JSON.

Binds to loopback unless the user names another address: a camera feed is not published by accident.
Hardened for untrusted clients: every socket read and write times out (a client that sends half a
request and waits is dropped), at most `max_clients` connections are served at once (the rest get an
immediate 503), and `publish` never blocks: frames are encoded on the server's own thread, only
while someone watches, and each viewer takes the latest frame when it is ready (slow ones skip).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from edgeseg.core.errors import EdgesegError
from edgeseg.core.fileio import json_text
from edgeseg.runtime.mjpeg_page import POLL_S as PAGE_POLL_S
from edgeseg.runtime.mjpeg_page import render_page

log = logging.getLogger("edgeseg.runtime")
BOUNDARY = "edgesegframe"
LINGER_S = 2.0  # at close, how long a polling page gets to learn why the stream ended
MAX_CLIENTS = 16  # concurrent connections (page, stats polls and streams together)
REQUEST_TIMEOUT = 5.0  # seconds any one socket read or write may take
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 36\r\n"
    b"Retry-After: 5\r\nConnection: close\r\n\r\ntoo many viewers; try again shortly\n"
)

StatsProvider = Callable[[], dict[str, Any]]


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


class _BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a cap on live connections; the extra ones get 503 and are closed."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], handler: Any, max_clients: int) -> None:
        self.max_clients = max_clients
        self.active = self.peak = self.refused = 0
        self._lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self.active >= self.max_clients
            if full:
                self.refused += 1
            else:
                self.active += 1
                self.peak = max(self.peak, self.active)
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._lock:
            self.active -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished or was cut off is routine: a debug line, not a traceback."""
        log.debug("mjpeg %s: connection dropped", client_address[0], exc_info=True)

    def _refuse(self, request: socket.socket) -> None:
        """Answer 503 without reading the request (never blocks the accept loop for long)."""
        try:
            request.settimeout(0.5)
            request.sendall(_BUSY)
            request.setblocking(False)
            try:  # drain what already arrived, so closing sends FIN rather than RST
                request.recv(65536)
            except OSError:
                pass
        except OSError:
            pass
        self.shutdown_request(request)


class _BoundedServer6(_BoundedServer):
    """The same on an IPv6 address (`--serve [::1]:8080`, `[::]:8080`)."""

    address_family = socket.AF_INET6


def _wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def lan_address() -> str | None:
    """This machine's address on its default route (what another machine on the LAN opens), or
    None without one; a UDP connect sends nothing."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere for real
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith(("0.", "127.")) else address


class MjpegServer:
    """Serves the latest published frame to every connected browser; `publish` never blocks."""

    def __init__(
        self,
        address: str = "127.0.0.1:8080",
        quality: int = 80,
        *,
        model: str = "",
        class_names: Sequence[str] = (),
        palette: Sequence[Sequence[int]] = (),
        stats: StatsProvider | None = None,
        max_clients: int = MAX_CLIENTS,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        host, port = parse_address(address)
        self.quality = quality
        self.page = render_page(model, class_names, palette)
        self._stats = stats
        self._started = time.monotonic()
        self._cond = threading.Condition()
        self._raw: np.ndarray | None = None
        self._raw_seq = 0
        self._jpeg: bytes | None = None
        self._seq = 0
        self._viewers = 0
        self._ended: str | None = None
        self._ended_served = threading.Event()  # a /stats poll has been told the stream ended
        self._polled_at: float | None = None  # when /stats was last served (a page is open)
        self._closed = False
        handler = self._handler_class(timeout)
        try:
            server_class = _BoundedServer6 if ":" in host else _BoundedServer
            self._httpd = server_class((host, port), handler, max_clients)
        except OSError as exc:
            raise EdgesegError(f"--serve {address}: cannot listen ({exc.strerror})") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()
        self._encoder = threading.Thread(target=self._encode_loop, name="mjpeg-enc", daemon=True)
        self._encoder.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        """The page's address as a browser opens it: on a wildcard bind (0.0.0.0, ::), this
        machine's LAN address (what another machine opens), else loopback."""
        host, port = self.address
        if _wildcard(host):
            host = lan_address() or ("::1" if ":" in host else "127.0.0.1")
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    @property
    def everywhere(self) -> bool:
        """Whether the server listens on every interface (0.0.0.0 or ::)."""
        return _wildcard(self.address[0])

    @property
    def refused(self) -> int:
        """Connections turned away with 503 because `max_clients` were already connected."""
        return self._httpd.refused

    @property
    def peak_clients(self) -> int:
        """The most connections served at once so far (never above `max_clients`)."""
        return self._httpd.peak

    def publish(self, image: np.ndarray) -> None:
        """Hand over a frame (BGR, not modified afterwards); O(1), whatever the viewers do."""
        with self._cond:
            self._raw = image
            self._raw_seq += 1
            self._cond.notify_all()

    def end(self, reason: str = "the source finished") -> None:
        """Mark the stream ended: feeds close, `/stats` says so, the page shows it."""
        with self._cond:
            if self._ended is None:
                self._ended = reason
            self._cond.notify_all()

    def close(self, linger: float = LINGER_S) -> None:
        """End the stream and stop serving. While a page is polling /stats, wait up to `linger`
        seconds for its next poll, so it can show why the stream ended rather than only that
        the server went away."""
        self.end()
        polled = self._polled_at
        if polled is not None and time.monotonic() - polled < PAGE_POLL_S * 3:
            self._ended_served.wait(linger)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._encoder.join(timeout=5)

    def stats(self) -> dict[str, Any]:
        """What `/stats` returns: the pipeline's live numbers plus uptime and the ended state."""
        data: dict[str, Any] = {"fps": 0.0, "frames": 0, "dropped": 0, "stages": {}}
        if self._stats is not None:
            data.update(self._stats())
        data["uptime_s"] = round(time.monotonic() - self._started, 3)
        data["viewers"] = self._viewers
        ended = self._ended
        data["ended"] = ended is not None
        data["reason"] = ended
        self._polled_at = time.monotonic()
        if ended is not None:
            self._ended_served.set()
        return data

    # === Encoding (the server's thread, never the pipeline's) ===

    def _encode_loop(self) -> None:
        done = 0

        def due() -> bool:
            return self._closed or (self._viewers > 0 and self._raw_seq != done)

        while True:
            with self._cond:
                self._cond.wait_for(due)
                if self._closed:
                    return
                image, done = self._raw, self._raw_seq
            if image is None:
                continue
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if ok:
                with self._cond:
                    self._jpeg = buf.tobytes()
                    self._seq += 1
                    self._cond.notify_all()

    def _next(self, seen: int) -> tuple[int, bytes | None]:
        """The newest JPEG after `seen` (None once ended; may repeat `seen` after a 1 s wait)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq != seen or self._ended is not None, timeout=1.0)
            return self._seq, (None if self._ended is not None else self._jpeg)

    def _viewer(self, delta: int) -> None:
        with self._cond:
            self._viewers += delta
            self._cond.notify_all()

    def _handler_class(self, request_timeout: float) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = request_timeout  # socket timeout for every read and write

            def setup(self) -> None:
                super().setup()
                # The whole request (not just each read) must arrive within `timeout`: a client
                # trickling a byte every few seconds is cut off too.
                self._deadline = threading.Timer(request_timeout, self._cut_off)
                self._deadline.daemon = True
                self._deadline.start()

            def _cut_off(self) -> None:
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def finish(self) -> None:
                self._deadline.cancel()
                super().finish()

            def do_GET(self) -> None:
                self._deadline.cancel()
                path = self.path.split("?", 1)[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html; charset=utf-8", server.page)
                elif path == "/stats":
                    body = json_text(server.stats(), indent=None).encode()
                    self._send(200, "application/json", body)
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache, private")
                self.send_header("Pragma", "no-cache")
                self.end_headers()
                seen = -1
                server._viewer(+1)
                try:
                    while True:
                        seq, jpeg = server._next(seen)
                        if server._ended is not None:
                            self.wfile.write(f"--{BOUNDARY}--\r\n".encode())
                            return
                        if jpeg is None or seq == seen:
                            continue
                        seen = seq
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        self.wfile.write(head + jpeg + b"\r\n")
                except OSError:
                    return  # the viewer went away or stopped reading for `timeout` seconds
                finally:
                    server._viewer(-1)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("mjpeg %s - %s", self.address_string(), format % args)

        return Handler
