"""The MJPEG server with a real HTTP client on 127.0.0.1 and an ephemeral port."""

from __future__ import annotations

import http.client
import threading
import time

import cv2
import numpy as np
import pytest

from edgeseg.core.errors import EdgesegError
from edgeseg.runtime.mjpeg import BOUNDARY, MjpegServer, parse_address


def test_address_defaults_to_loopback() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(EdgesegError, match="HOST:PORT"):
        parse_address("localhost:http")


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
