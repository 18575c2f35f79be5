"""A real uvicorn on 127.0.0.1 (a free port) serving the coach's app, for web tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import Engine

from agent.offline import OfflineCoach
from agent.settings import Settings
from agent.web.app import create_app
from memory.accounts import add_user
from memory.store import open_engine
from seam.model import Model

# The demo learner's first message: everything step 1's gate asks for.
STEP_ONE = (
    "Title: Handover Helper Problem: Night-shift nurses hand over ten to twenty patients in a "
    "few minutes from handwritten notes, and abnormal vitals get lost in the noise when the "
    "ward is busy and people are tired. Audience: ward nurses doing shift handovers Why me: I "
    "worked six years of night shifts as a nurse before retraining Success: flags 95% of "
    "abnormal vitals in 50 anonymised notes Capabilities: structured_output, evals_ci")


@dataclass
class Server:
    url: str
    db_url: str
    engine: Engine  # the test's own connection, for seeding and checking rows
    clients: list[httpx.Client] = field(default_factory=list)  # closed with the server

    def learner(self, name: str) -> str:
        """A new learner's token."""
        return add_user(self.engine, name)

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)
        self.clients.append(client)
        return client


def parse_sse(body: str) -> list[tuple[str, str]]:
    """(event, data) pairs of a server-sent-events body."""
    out = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        out.append((event, "\n".join(data)))
    return out


@contextmanager
def running(db_url: str, home: Path, model_factory: Callable[[], Model] = OfflineCoach,
            budget: str = "5.00", rate_limits: str | None = None, **app_options: Any,
            ) -> Iterator[Server]:
    """`app_options` go to `create_app`; `private_urls=True` lets the coach fetch 127.0.0.1."""
    private = "1" if app_options.pop("private_urls", False) else ""
    settings = Settings.load(db=db_url, user="owner", model="offline",
                             env={"COACH_HOME": str(home), "COACH_BUDGET_USD": budget,
                                  "COACH_ALLOW_PRIVATE_URLS": private})
    app = create_app(settings, model_factory, rate_limits=rate_limits, **app_options)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # ws="none": the app has no websockets, and the websockets library warns on import.
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none", http="h11",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    engine = open_engine(db_url)
    srv = Server(f"http://127.0.0.1:{port}", db_url, engine)
    try:
        yield srv
    finally:
        for client in srv.clients:
            client.close()
        server.should_exit = True
        thread.join(15)
        engine.dispose()
        sock.close()
