"""Slow and oversized clients against a real `suqiu serve` (service/guard.py).

The deadlines are set to 1 s here; each check waits up to 8 s for the server to act, so a
busy machine does not fail them, while a server without the limits keeps the connection
open forever and fails them all.
"""
import socket
import time

import httpx2
import pytest

from service.bench import start_server


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def server(request, tmp_path_factory, demo_bundle):
    mp = pytest.MonkeyPatch()
    mp.setenv("SUQIU_HEADER_TIMEOUT_S", "1")
    mp.setenv("SUQIU_BODY_TIMEOUT_S", "1")
    mp.setenv("SUQIU_MAX_HEADER_BYTES", "8192")
    url = f"sqlite:///{tmp_path_factory.mktemp('slow') / 'suqiu.db'}"
    proc, base, key = start_server(url, demo_bundle.path, workers=request.param)
    mp.undo()
    try:
        yield base, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _connect(base):
    host, port = base.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=8)
    return s


def _answer(s) -> bytes:
    """What the server sends before it closes the connection (b"" for a bare close);
    raises socket.timeout when it keeps the connection open."""
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


def _trickle(s, data: bytes, every=0.3, limit=8.0):
    """Send ``data`` a byte at a time; True when the server closed the connection first."""
    t0 = time.monotonic()
    for b in data:
        if time.monotonic() - t0 > limit:
            return False
        try:
            s.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            return True
        time.sleep(every)
    return False


def test_a_connection_that_sends_nothing_is_closed(server):
    base, _ = server
    with _connect(base) as s:
        assert _answer(s).startswith(b"HTTP/1.1 408")


def test_headers_trickling_in_are_cut_off(server):
    base, _ = server
    with _connect(base) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = _trickle(s, b"X-Slow: " + b"a" * 100)
        assert closed or _answer(s).startswith(b"HTTP/1.1 408")


def test_a_body_trickling_in_is_cut_off(server):
    base, key = server
    with _connect(base) as s:
        s.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"X-API-Key: " + key.encode() + b"\r\nContent-Length: 200\r\n\r\n{")
        closed = _trickle(s, b'"text": "' + "很慢".encode() * 30)
        assert closed or _answer(s) == b""


def test_oversized_headers_are_refused(server):
    base, _ = server
    with _connect(base) as s:
        s.sendall(b"GET /v1/appeals HTTP/1.1\r\nHost: x\r\nX-API-Key: " + b"k" * 100_000)
        time.sleep(0.5)  # the server has answered by now; the client is still sending
        s.sendall(b"k" * 100_000 + b"\r\n\r\n")
        # a server that closes with the rest unread resets the connection and the answer is lost
        assert _answer(s).startswith(b"HTTP/1.1 431")


def test_ordinary_requests_still_pass(server):
    base, key = server
    with httpx2.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as c:
        for _ in range(3):  # a kept-alive connection: each request gets its own deadlines
            assert c.get("/healthz").status_code == 200
            r = c.post("/v1/classify", json={"text": "小区停水三天了"})
            assert r.status_code == 200 and r.json()["data"][0]["urgency"]


def test_a_large_batch_is_not_mistaken_for_large_headers(server):
    """Headers and body arrive in the same reads: only the headers count towards the cap."""
    base, key = server
    batch = {"appeals": [{"id": f"big-{i}", "text": "小区停水三天了，" * 40} for i in range(300)]}  # ~1 MB
    with httpx2.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as c:
        r = c.post("/v1/appeals", json=batch)
    assert r.status_code == 200 and r.json()["count"] == 300
