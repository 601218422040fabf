"""One look at the kiosk tab through Chromium's DevTools: does it show the kiosk, and does
the page answer? Run by deploy/kiosk-browser.sh every few seconds; Python stdlib only (it
runs as a plain script, isolated so that its folder does not hide stdlib modules:
``python3 -I browser_watch.py --port 9222 --url http://127.0.0.1:8080/``).

The DevTools tab list alone cannot see a crashed renderer ("Aw, Snap!") or a hung one: the
tab still lists the kiosk's address. So the page is asked ``document.readyState`` over the
DevTools WebSocket with a timeout. A page that does not answer is navigated to the start
page once (this brings a crashed renderer back in milliseconds) and asked again.

Exit status (one line on stdout says why):
  0  the page shows the kiosk and answers
  1  no page shows the kiosk (blank, a browser error page, another site, none)
  2  DevTools does not answer (the browser is starting, or gone)
  3  the page did not answer; reloading the start page brought it back
  4  the page does not answer, not even after a reload (a hung renderer): restart
 64  bad arguments (the message says which)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

OK, NOT_KIOSK, NO_DEVTOOLS, RELOADED, DEAD, USAGE = 0, 1, 2, 3, 4, 64
MAX_FRAME = 1 << 20  # DevTools' answers to our two commands are tiny


class WatchError(Exception):
    """The DevTools connection failed or a page did not answer in time. (Not derived from
    the project's root error: this script runs on the system Python, without vanbox.)"""


class DevToolsSocket:
    """The smallest WebSocket client (RFC 6455) that speaks to one DevTools target: text
    frames out (masked), whole text frames in. Every read has the socket's timeout."""

    def __init__(self, ws_url: str, timeout: float) -> None:
        u = urllib.parse.urlsplit(ws_url)
        if u.scheme != "ws" or u.hostname not in ("127.0.0.1", "localhost") or not u.port:
            raise WatchError(f"not a local DevTools address: {ws_url!r}")
        try:
            self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
            key = base64.b64encode(os.urandom(16)).decode()
            self.sock.sendall(
                (
                    f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            self.buf = b""
            while b"\r\n\r\n" not in self.buf:
                self.buf += self._recv()
        except OSError as e:
            raise WatchError(f"DevTools connection: {e}") from e
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0] + b" ":
            self.close()
            raise WatchError(f"DevTools refused the connection: {head[:80]!r}")
        self.next_id = 0

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise WatchError("DevTools closed the connection")
        return chunk

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self) -> tuple[int, bytes]:
        b1, b2 = self._read(2)
        n = b2 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        if n > MAX_FRAME:
            raise WatchError(f"DevTools frame of {n} bytes")
        return b1 & 0x0F, self._read(n)

    def call(self, method: str, params: dict | None = None) -> dict:
        """Send one command and wait for its answer (events in between are skipped)."""
        self.next_id += 1
        data = json.dumps({"id": self.next_id, "method": method, "params": params or {}})
        payload = data.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        )
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        try:
            self.sock.sendall(head + mask + masked)
            while True:
                op, body = self._frame()
                if op == 8:
                    raise WatchError("DevTools closed the connection")
                if op != 1:
                    continue  # ping, pong, binary: not for us
                msg = json.loads(body)
                if msg.get("id") == self.next_id:
                    if "error" in msg:
                        raise WatchError(f"{method}: {msg['error'].get('message', msg['error'])}")
                    return msg.get("result", {})
        except (OSError, ValueError) as e:  # socket.timeout is an OSError
            raise WatchError(f"{method}: no answer ({e or 'timed out'})") from e

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


@dataclass(frozen=True)
class Verdict:
    code: int
    why: str


def origin_of(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}/"


def kiosk_tabs(tabs: object, origin: str) -> list[dict]:
    """The pages on the kiosk's origin in a DevTools list (anything else in it: none)."""
    if not isinstance(tabs, list):
        return []
    return [
        t
        for t in tabs
        if isinstance(t, dict)
        and t.get("type") == "page"
        and isinstance(t.get("url"), str)
        and t["url"].startswith(origin)
    ]


def kiosk_pages(port: int, origin: str, timeout: float) -> list[dict]:
    """The DevTools list's pages on the kiosk's origin; WatchError if no list."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            tabs = json.load(r)
    except (OSError, ValueError) as e:
        raise WatchError(f"no DevTools list on port {port}: {e}") from e
    return kiosk_tabs(tabs, origin)


def answers(ws_url: str, timeout: float) -> bool:
    """The page runs script: ``document.readyState`` comes back within ``timeout``."""
    try:
        ws = DevToolsSocket(ws_url, timeout)
    except WatchError:
        return False
    try:
        got = ws.call(
            "Runtime.evaluate",
            {"expression": "document.readyState", "timeout": int(timeout * 1000)},
        )
        return got.get("result", {}).get("type") == "string"
    except WatchError:
        return False
    finally:
        ws.close()


def reload_start(ws_url: str, url: str, timeout: float) -> bool:
    """Navigate the tab to the start page, then wait until it answers (up to ``timeout``)."""
    try:
        ws = DevToolsSocket(ws_url, timeout)
        try:
            ws.call("Page.navigate", {"url": url})
        finally:
            ws.close()
    except WatchError:
        return False
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if answers(ws_url, max(0.2, min(left, 1.0))):
            return True
        time.sleep(0.1)


def check(port: int, url: str, timeout: float) -> Verdict:
    origin = origin_of(url)
    try:
        pages = kiosk_pages(port, origin, timeout)
    except WatchError as e:
        return Verdict(NO_DEVTOOLS, str(e))
    if not pages:
        return Verdict(NOT_KIOSK, f"no tab shows {origin}")
    page = pages[0]
    ws_url = page.get("webSocketDebuggerUrl")
    if not isinstance(ws_url, str) or not ws_url:
        # another DevTools client holds the tab: the list is all we know
        return Verdict(OK, "the tab shows the kiosk (not probed: DevTools busy)")
    if answers(ws_url, timeout):
        return Verdict(OK, "the tab shows the kiosk and answers")
    if reload_start(ws_url, url, timeout):
        return Verdict(RELOADED, f"the page at {page.get('url')} did not answer; reloaded {url}")
    return Verdict(DEAD, f"the page at {page.get('url')} does not answer, not even after a reload")


class Usage(argparse.ArgumentParser):
    """argparse with its own exit status for bad arguments (2 means "no DevTools")."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"browser_watch: {message}", file=sys.stderr)
        sys.exit(USAGE)


def main(argv: list[str] | None = None) -> int:
    ap = Usage(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True, help="Chromium's DevTools port")
    ap.add_argument("--url", required=True, help="the kiosk's start page")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds a page may take")
    a = ap.parse_args(argv)
    if not 0 < a.port < 65536:
        ap.error(f"--port {a.port}: not a TCP port")
    if not 0.1 <= a.timeout <= 60:
        ap.error(f"--timeout {a.timeout}: between 0.1 and 60 s")
    if urllib.parse.urlsplit(a.url).scheme not in ("http", "https"):
        ap.error(f"--url {a.url!r}: an http(s) address")
    v = check(a.port, a.url, a.timeout)
    print(v.why)
    return v.code


if __name__ == "__main__":
    sys.exit(main())
