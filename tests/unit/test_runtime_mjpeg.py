"""The MJPEG server with a real HTTP client on 127.0.0.1 and an ephemeral port."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg.core.errors import EdgesegError
from edgeseg.core.processing import overlay
from edgeseg.core.spec import ModelSpec
from edgeseg.runtime.mjpeg import BOUNDARY, MjpegServer, parse_address
from edgeseg.runtime.outputs import annotate, render


def test_address_defaults_to_loopback() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(EdgesegError, match="HOST:PORT"):
        parse_address("localhost:http")


def test_the_printed_address_is_one_a_browser_can_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """0.0.0.0 is where the server listens, not an address to open: the URL names this machine's
    LAN address (loopback without one); an IPv6 address binds and is bracketed in the URL."""
    from edgeseg.runtime import mjpeg

    monkeypatch.setattr(mjpeg, "lan_address", lambda: "192.168.1.20")
    server = MjpegServer("0.0.0.0:0")
    try:
        port = server.address[1]
        assert server.everywhere and server.url == f"http://192.168.1.20:{port}/"
        assert get("127.0.0.1", port, "/stats")[0] == 200
    finally:
        server.close()
    monkeypatch.setattr(mjpeg, "lan_address", lambda: None)
    server = MjpegServer("0.0.0.0:0")
    try:
        assert server.url == f"http://127.0.0.1:{server.address[1]}/"
    finally:
        server.close()
    try:
        server = MjpegServer("[::1]:0")
    except EdgesegError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    try:
        assert not server.everywhere and server.url == f"http://[::1]:{server.address[1]}/"
        assert get("::1", server.address[1], "/stats")[0] == 200
    finally:
        server.close()


def read_one_jpeg(host: str, port: int) -> bytes:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type") == f"multipart/x-mixed-replace; boundary={BOUNDARY}"
    assert resp.readline().strip() == f"--{BOUNDARY}".encode()
    headers = {}
    while (line := resp.readline().strip()) != b"":
        key, _, value = line.decode().partition(":")
        headers[key.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    body = resp.read(int(headers["content-length"]))
    conn.close()
    return body


def test_stream_serves_jpeg_frames_and_a_page() -> None:
    server = MjpegServer("127.0.0.1:0")
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, 32:] = (0, 0, 255)
    stop = threading.Event()

    def publish() -> None:
        while not stop.is_set():
            server.publish(frame)
            time.sleep(0.02)

    pub = threading.Thread(target=publish, daemon=True)
    pub.start()
    try:
        jpeg = read_one_jpeg(host, port)
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert decoded.shape == frame.shape and decoded[24, 60, 2] > 200

        conn = http.client.HTTPConnection(host, port, timeout=5)
        conn.request("GET", "/")
        page = conn.getresponse()
        assert page.status == 200 and b"/stream.mjpg" in page.read()
        conn.request("GET", "/nothing")
        assert conn.getresponse().status == 404
        conn.close()
    finally:
        stop.set()
        pub.join()
        server.close()


# === The live page, /stats and the ended state ===


def get(host: str, port: int, path: str) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Type") or ""
    finally:
        conn.close()


def test_page_has_model_name_and_legend_escaped() -> None:
    names = ("background", "<script>alert(1)</script>", "\x1b[31mred[/bold] & co")
    server = MjpegServer(
        "127.0.0.1:0",
        model='unet "<b>x</b>".tflite',
        class_names=names,
        palette=((10, 20, 30), (255, 0, 0), (0, 128, 0)),
    )
    try:
        status, page, ctype = get(*server.address, "/")
    finally:
        server.close()
    text = page.decode()
    assert status == 200 and ctype.startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert" not in text
    assert "red[/bold] &amp; co" in text and "&quot;&lt;b&gt;x&lt;/b&gt;&quot;" in text
    assert "<b>x</b>" not in text
    assert "rgb(10,20,30)" in text and "rgb(255,0,0)" in text  # palette is RGB
    assert "object-fit:contain" in text and 'src="/stream.mjpg"' in text
    assert "http://" not in text and "https://" not in text  # no external assets


def test_stats_endpoint_reports_pipeline_numbers_and_the_ended_state() -> None:
    calls = []

    def live() -> dict[str, object]:
        calls.append(1)
        return {"fps": 12.5, "frames": 40, "dropped": 3, "stages": {"invoke": 20.0}}

    server = MjpegServer("127.0.0.1:0", stats=live)
    try:
        status, body, ctype = get(*server.address, "/stats?t=1")
        assert status == 200 and ctype == "application/json"
        stats = json.loads(body)
        assert stats["fps"] == 12.5 and stats["frames"] == 40 and stats["dropped"] == 3
        assert stats["stages"] == {"invoke": 20.0} and stats["uptime_s"] >= 0
        assert stats["ended"] is False and stats["reason"] is None and calls

        # A viewer connected when the stream ends gets the closing boundary, then EOF.
        server.publish(np.zeros((16, 16, 3), np.uint8))
        conn = http.client.HTTPConnection(*server.address, timeout=10)
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        assert resp.readline().strip() == f"--{BOUNDARY}".encode()
        server.end("stopped by test")
        rest = resp.read()  # returns only once the server closed the feed
        conn.close()
        assert rest.rstrip().endswith(f"--{BOUNDARY}--".encode())
        stats = json.loads(get(*server.address, "/stats")[1])
        assert stats["ended"] is True and stats["reason"] == "stopped by test"
    finally:
        server.close()


def test_close_waits_for_a_polling_page_to_learn_why_the_stream_ended() -> None:
    """A page that polls /stats learns the reason at its next poll, even when the run closes
    the server right after ending the stream (it used to close at once, and the page could only
    say the server had gone). A server nobody polls closes at once."""
    server = MjpegServer("127.0.0.1:0")
    address = server.address
    get(*address, "/stats")  # a page is open
    seen: list[dict[str, object]] = []

    def page_polls_again() -> None:
        time.sleep(0.5)  # the page's next poll, after the run has asked to close
        seen.append(json.loads(get(*address, "/stats")[1]))

    poller = threading.Thread(target=page_polls_again)
    poller.start()
    server.end("the camera was lost")
    started = time.monotonic()
    server.close()
    poller.join()
    assert seen and seen[0]["ended"] is True and seen[0]["reason"] == "the camera was lost"
    assert time.monotonic() - started < 5  # it waited for the poll, not the whole linger and more

    unwatched = MjpegServer("127.0.0.1:0")
    started = time.monotonic()
    unwatched.close()
    assert time.monotonic() - started < 1.5  # the 2 s linger not waited (0.5 s: serve's poll)


# === Hardening: timeouts, a bounded number of clients, slow readers ===


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count open fds")
def test_half_request_flood_is_bounded_and_timed_out() -> None:
    """300 clients that send half a request line and wait: at most `max_clients` are served (the
    rest get 503 at once), those are dropped after the timeout, and a real viewer gets in."""
    baseline = open_fds()
    server = MjpegServer("127.0.0.1:0", max_clients=8, timeout=1.0)
    host, port = server.address
    flood: list[socket.socket] = []
    try:
        for _ in range(300):
            sock = socket.create_connection((host, port), timeout=5)
            sock.sendall(b"GET /stream.mj")  # half a request line, then silence
            flood.append(sock)
        answers = []
        for sock in flood:
            data = b""
            while chunk := sock.recv(4096):  # 503 + close at once, or EOF after the timeout
                data += chunk
            answers.append(data)
        busy = [a for a in answers if a.startswith(b"HTTP/1.0 503")]
        # Never more than 8 at once; slots freed by the timeout may serve a few more of the 300.
        assert server.peak_clients == 8 and server.refused == len(busy) >= 150
        assert all(b"too many viewers" in a for a in busy)
        assert not any(a.startswith(b"HTTP/1.0 200") for a in answers)  # half requests: no page
    finally:
        for sock in flood:
            sock.close()
    try:
        status = 503
        for _ in range(50):  # the timed-out slots are released: a normal client gets the page
            status, page, _ = get(host, port, "/")
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200 and b"/stream.mjpg" in page
        for _ in range(50):  # and the server holds no leftover sockets (fds back near baseline)
            if open_fds() <= baseline + 12:
                break
            time.sleep(0.1)
        assert open_fds() <= baseline + 12
    finally:
        server.close()


def test_connections_beyond_the_cap_get_503() -> None:
    server = MjpegServer("127.0.0.1:0", max_clients=2, timeout=5.0)
    host, port = server.address
    held = [socket.create_connection((host, port), timeout=5) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET / HTTP/1.0\r\n")  # headers never finished: the slot stays taken
        status = 0
        for _ in range(50):
            status, body, _ = get(host, port, "/")
            if status == 503:
                break
            time.sleep(0.05)
        assert status == 503 and b"too many viewers" in body
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_a_reader_that_stops_reading_is_dropped_and_publish_never_blocks() -> None:
    server = MjpegServer("127.0.0.1:0", timeout=1.0, quality=95)
    host, port = server.address
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (480, 640, 3), np.uint8)  # ~500 KB per JPEG: fills the buffers
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect((host, port))
    slow.sendall(b"GET /stream.mjpg HTTP/1.0\r\n\r\n")  # then never reads
    try:
        viewers = []
        for i in range(400):  # bounded: each publish is O(1), so this loop takes ~4 s at most
            server.publish(noise if i % 2 else noise[::-1])
            viewers.append(server.stats()["viewers"])
            if 1 in viewers and viewers[-1] == 0:  # connected (however late), then dropped
                break
            time.sleep(0.01)
        assert max(viewers) == 1 and viewers[-1] == 0  # connected, then dropped by the send timeout
        status, _, _ = get(host, port, "/stats")
        assert status == 200
    finally:
        slow.close()
        server.close()


def test_served_view_has_no_burned_in_legend_or_hud() -> None:
    """With --serve the page shows legend and stats in HTML; the pixels stay the plain overlay."""
    spec = ModelSpec(32, 32, ("background", "cell"))
    frame = np.full((96, 128, 3), 90, np.uint8)
    class_map = np.zeros((96, 128), np.uint8)
    class_map[:, 64:] = 1
    clean = render(frame, class_map, spec, "overlay", None, 0.5, legend=False)
    assert np.array_equal(clean, overlay(frame, class_map, spec.palette, 0.5))
    burned = annotate(clean.copy(), spec, ["10.0 FPS"])
    assert np.array_equal(burned, render(frame, class_map, spec, "overlay", ["10.0 FPS"], 0.5))
    assert not np.array_equal(clean, burned)
