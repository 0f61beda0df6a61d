"""The comment client against a hostile API on 127.0.0.1: malformed replies, wrong JSON types,
deep JSON and a trickled body end in GitHubError (exit 2 from the command), never a traceback
or a hang; URLs from the API are printed only when they are plain http(s) URLs."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from pgolf_audit.github_comment import MARKER, GitHubClient, GitHubError, safe_url, upsert_comment


class RawServer:
    """Answers each connection with the next scripted reply: raw bytes, or a callable that
    gets the socket (for replies that trickle)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.replies:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            reply = self.replies.pop(0)
            try:
                conn.recv(65536)
                if callable(reply):
                    reply(conn)
                else:
                    conn.sendall(reply)
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self.sock.close()


def http(body: bytes | str, status: str = "200 OK", headers: str = "") -> bytes:
    data = body.encode() if isinstance(body, str) else body
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{headers}"
            "Connection: close\r\n\r\n").encode() + data


def client(server: RawServer, **options) -> GitHubClient:
    return GitHubClient(server.url, "t0ken", retries=0, sleep=lambda _: None, **options)


MALFORMED = {
    "bad status line": b"HTTP/1.1 OK-ish nonsense\r\n\r\n",
    "not http at all": b"\x00\x01garbage\r\n\r\n",
    "too many headers": ("HTTP/1.1 200 OK\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(150)) + "\r\n{}").encode(),
    "header line too long": ("HTTP/1.1 200 OK\r\nX-Long: " + "a" * 70000 + "\r\n\r\n{}").encode(),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_replies_are_api_errors(kind):
    server = RawServer([MALFORMED[kind]])
    try:
        with pytest.raises(GitHubError):
            client(server).request("GET", "/user")
    finally:
        server.close()


def test_deep_json_is_an_api_error():
    server = RawServer([http("[" * 100000 + "]" * 100000)])
    try:
        with pytest.raises(GitHubError, match="nested too deeply"):
            client(server).request("GET", "/user")
    finally:
        server.close()


def test_a_trickled_body_stops_at_the_total_deadline():
    def trickle(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(40):
            conn.sendall(b" ")
            time.sleep(0.25)

    server = RawServer([trickle])
    start = time.monotonic()
    try:
        with pytest.raises(GitHubError, match="longer than 2 s"):
            client(server, timeout=1.0, deadline=2.0).request("GET", "/user")
    finally:
        server.close()
    assert time.monotonic() - start < 5


@pytest.mark.parametrize("replies, words", [
    ([http(json.dumps({"login": 12345}))], "login as int"),
    ([http(json.dumps({"login": "me"})),
      http(json.dumps([{"id": "7", "body": MARKER + "\nold", "user": {"login": "me"}}]))], "comment id as str"),
    ([http(json.dumps({"login": "me"})), http(json.dumps(["not a comment"]))], "comment as str"),
])
def test_wrong_json_types_are_api_errors(replies, words):
    server = RawServer(replies)
    try:
        with pytest.raises(GitHubError, match=words):
            upsert_comment(client(server), "o/r", 1, "new review")
    finally:
        server.close()


def test_the_comment_url_is_echoed_only_when_plain():
    hostile = "https://github.com/o/r/pull/1#c\n\x1b]8;;https://evil.example\x07click"
    server = RawServer([http(json.dumps({"login": "me"})), http("[]"),
                        http(json.dumps({"id": 9, "html_url": hostile}), status="201 Created")])
    try:
        outcome = upsert_comment(client(server), "o/r", 1, "new review")
    finally:
        server.close()
    assert outcome.action == "created" and outcome.comment_id == 9 and outcome.url == ""
    assert safe_url("https://github.com/o/r/pull/1#issuecomment-9") == "https://github.com/o/r/pull/1#issuecomment-9"
