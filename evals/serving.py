"""Starting a server process for a test or a benchmark: a free port on 127.0.0.1, and
waiting until its health check answers (or it dies, or the wait runs out)."""

from __future__ import annotations

import socket
import subprocess
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def wait_until_healthy(url: str, process: subprocess.Popen[bytes] | subprocess.Popen[str] | None,
                       timeout: float, why: str) -> None:
    """Return once GET `url` answers 200; RuntimeError(`why`) if `process` exits first or
    `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if (process is not None and process.poll() is not None) or \
                time.monotonic() > deadline:
            raise RuntimeError(why)
        time.sleep(0.25)
