"""A git smart-HTTP server on 127.0.0.1 (dulwich's own WSGI server), for tests, eval cases
and the clone benchmark: `with git_http({"/app.git": path}) as base: ...`.

`/private/…` answers 401 and `/forbidden/…` 403, as forges do for a private repository.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dulwich.repo import Repo
from dulwich.server import DictBackend
from dulwich.web import make_wsgi_chain


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def git_http(repos: dict[str, Path]) -> Iterator[str]:
    """Serve each repository at its path; yields the base URL (no trailing slash)."""
    opened = {name.encode(): Repo(str(path)) for name, path in repos.items()}
    git_app = make_wsgi_chain(DictBackend(opened))  # type: ignore[arg-type]

    def app(environ: dict[str, Any], start: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/private/"):
            start("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'),
                                       ("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO", "").startswith("/forbidden/"):
            start("403 Forbidden", [("Content-Length", "0")])
            return [b""]
        return git_app(environ, start)

    server = make_server("127.0.0.1", 0, app, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        for repo in opened.values():
            repo.close()
