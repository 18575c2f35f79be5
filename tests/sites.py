"""A learner's deployed app on 127.0.0.1 that the test holds: a deployment check of it
waits until the test lets it answer, so a test can act while checks are in flight."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HeldSite:
    """Answers 200 once `release` is set; `arrived` counts requests, `client_ports` says
    where each came from (to find the process that is waiting on it)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Semaphore(0)
        self.client_ports: list[int] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server API
                site.client_ports.append(self.client_address[1])
                site.arrived.release()
                site.release.wait(30)
                body = b"<html><body>Handover Helper</body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def wait_for(self, requests: int, timeout: float = 30) -> bool:
        return all(self.arrived.acquire(timeout=timeout) for _ in range(requests))

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
