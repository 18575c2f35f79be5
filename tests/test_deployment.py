"""Tests for tools.deployment: only ever talks to HTTP servers on 127.0.0.1.

An autouse guard replaces socket.create_connection so that any attempt to connect anywhere
else fails loudly and is recorded; refused addresses must be refused before that point.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address, ip_network
from typing import Any

import pytest

from tools.deployment import (
    USER_AGENT,
    AddressPolicy,
    DeploymentCheck,
    check_deployment_url,
    is_streamlit_cloud_host,
    looks_like_streamlit,
)

LOCAL = AddressPolicy(extra_allowed=[ip_network("127.0.0.1/32")])
STREAMLIT_PAGE = (
    b"<!doctype html><html><head><title>Streamlit</title>"
    b'<script defer src="./static/js/main.4f2b.js"></script></head>'
    b"<body><noscript>You need to enable JavaScript to run this app.</noscript>"
    b'<div id="root"></div></body></html>'
)


@dataclass
class Server:
    base: str
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: Server  # set on a per-test subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        state = self.server_state
        state.requests.append({"path": self.path, "headers": dict(self.headers)})
        path, _, query = self.path.partition("?")
        head, _, arg = path[1:].partition("/")
        routes: dict[str, Callable[[], None]] = {
            "ok": lambda: self._send(200, b"<html><title>My project</title>hello</html>"),
            "streamlit": lambda: self._send(200, STREAMLIT_PAGE, Content_Type="text/html"),
            "r1": lambda: self._send(302, Location="/r2"),
            "r2": lambda: self._send(301, Location=f"{state.base}/ok"),
            "to": lambda: self._send(302, Location=query),
            "count": lambda: self._count(int(arg)),
            "status": lambda: self._send(int(arg), b"nope"),
            "slow": self._slow,
            "huge": self._huge,
            "endless": self._endless,
            "drip": self._drip,
            "pause": self._pause,
            "marker": lambda: self._marker(int(arg)),
            "garbage": self._garbage,
            # Not UTF-8 (Latin-1 and a stray byte), with a Streamlit marker after it.
            "latin": lambda: self._send(200, b"<html>caf\xe9 \xff" + STREAMLIT_PAGE),
        }
        try:
            routes.get(head, lambda: self._send(404, b"not found"))()
        except (ConnectionError, TimeoutError):
            pass  # the client hung up on purpose (cap / timeout tests)

    def _count(self, left: int) -> None:
        if left:
            self._send(302, Location=f"/count/{left - 1}")
        else:
            self._send(200, b"landed")

    def _slow(self) -> None:
        self.server_state.stop.wait(5)
        self._send(200, b"late")

    def _endless(self) -> None:
        # No length and no end: only a reader that stops at the cap ever finishes.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        chunk = b"e" * 65_536
        while not self.server_state.stop.is_set():
            self.wfile.write(chunk)

    def _drip(self) -> None:
        # One byte every 0.1 s for 4 s: every read is quick, the whole read is not.
        self.send_response(200)
        self.send_header("Content-Length", "40")
        self.end_headers()
        for _ in range(40):
            if self.server_state.stop.wait(0.1):
                return
            self.wfile.write(b"d")
            self.wfile.flush()

    def _garbage(self) -> None:
        self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def _pause(self) -> None:
        self.server_state.stop.wait(0.25)
        self._send(200, b"after a pause")

    def _marker(self, end: int) -> None:
        # A Streamlit marker whose last byte is byte number `end` of the body.
        marker = b"/_stcore/"
        self._send(200, b"a" * (end - len(marker)) + marker + b"z" * 1000)

    def _huge(self) -> None:
        # A Streamlit marker placed past the cap proves the cap is honoured.
        self.send_response(200)
        self.send_header("Content-Length", str(50_000_000))
        self.end_headers()
        self.wfile.write(b"a" * 200_000 + b"<title>Streamlit</title>")
        chunk = b"b" * 65_536
        for _ in range(50_000_000 // len(chunk)):
            if self.server_state.stop.is_set():
                return
            self.wfile.write(chunk)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(base="", port=0)
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("BoundHandler", (Handler,), {"server_state": srv})
    )
    srv.port = httpd.server_address[1]
    srv.base = f"http://127.0.0.1:{srv.port}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    attempts: list[tuple[str, int]] = []
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append((address[0], address[1]))
        if address[0] != "127.0.0.1":
            raise OSError(f"test guard: refusing to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return attempts


def fake_resolver(mapping: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in mapping:
            raise socket.gaierror(f"fake resolver: unknown host {host}")
        return mapping[host]

    return resolve


def no_network(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver must not be called, got {host}")


# --- success paths -------------------------------------------------------------------------


def test_2xx_is_ok_with_latency_final_url_and_user_agent(server: Server) -> None:
    url = f"{server.base}/ok"
    result = check_deployment_url(url, policy=LOCAL)
    assert result.ok is True
    assert result.status_code == 200
    assert result.final_url == url
    assert result.url == url
    assert isinstance(result.latency_ms, int) and 0 <= result.latency_ms < 5000
    assert result.reason == "HTTP 200"
    assert result.redirects == ()
    assert result.streamlit is False and result.warnings == ()
    assert server.requests[0]["headers"]["User-Agent"] == USER_AGENT


def test_redirect_chain_is_followed_and_recorded(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/r1", policy=LOCAL)
    assert result.ok is True
    assert result.redirects == (f"{server.base}/r2", f"{server.base}/ok")
    assert result.final_url == f"{server.base}/ok"
    assert result.reason == "HTTP 200 after 2 redirects"
    assert [r["path"] for r in server.requests] == ["/r1", "/r2", "/ok"]


def test_exactly_max_redirects_is_allowed(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/count/5", policy=LOCAL, max_redirects=5)
    assert result.ok is True
    assert len(result.redirects) == 5
    assert result.final_url == f"{server.base}/count/0"


def test_as_dict_is_json_serialisable(server: Server) -> None:
    data = check_deployment_url(f"{server.base}/r1", policy=LOCAL).as_dict()
    decoded = json.loads(json.dumps(data))
    assert decoded["ok"] is True
    assert decoded["redirects"] == [f"{server.base}/r2", f"{server.base}/ok"]
    assert set(decoded) == {f.name for f in DeploymentCheck.__dataclass_fields__.values()}


def test_allow_private_lets_loopback_through(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/ok", policy=AddressPolicy(allow_private=True))
    assert result.ok is True
    assert result.status_code == 200


def test_default_policy_refuses_the_local_server(server: Server, connections: list) -> None:
    result = check_deployment_url(f"{server.base}/ok")
    assert result.ok is False
    assert "loopback" in result.reason and "127.0.0.1" in result.reason
    assert server.requests == [] and connections == []


# --- address policy ------------------------------------------------------------------------

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:127.0.0.1", "loopback"),
    ("2002:a00:1::1", "private"),  # 6to4 wrapping 10.0.0.1
    ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 wrapping 169.254.169.254
    ("100.64.0.1", "shared address space"),
    ("fc00::1", "private"),
]


@pytest.mark.parametrize(("ip", "kind"), REFUSED)
def test_policy_names_the_address_class(ip: str, kind: str) -> None:
    assert AddressPolicy().check(ip_address(ip)) == kind


@pytest.mark.parametrize("ip", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_policy_allows_public_addresses(ip: str) -> None:
    assert AddressPolicy().check(ip_address(ip)) is None


def test_extra_allowed_is_narrow() -> None:
    assert LOCAL.check(ip_address("127.0.0.1")) is None
    assert LOCAL.check(ip_address("127.0.0.2")) == "loopback"
    assert LOCAL.check(ip_address("10.0.0.1")) == "private"
    assert AddressPolicy(allow_private=True).check(ip_address("169.254.169.254")) is None


@pytest.mark.parametrize(("ip", "kind"), REFUSED)
def test_ip_literal_urls_are_refused_before_connecting(
    ip: str, kind: str, connections: list
) -> None:
    host = f"[{ip}]" if ":" in ip else ip
    result = check_deployment_url(f"http://{host}:8080/", resolver=no_network)
    assert result.ok is False
    assert result.status_code is None
    assert f"{kind} address" in result.reason and result.reason.startswith("refused:")
    assert connections == []


def test_hostname_resolving_to_private_address_is_refused(connections: list) -> None:
    resolver = fake_resolver({"intranet.example": ["10.0.0.5"]})
    result = check_deployment_url("http://intranet.example/", resolver=resolver)
    assert result.ok is False
    assert result.reason == "refused: intranet.example resolves to 10.0.0.5, a private address"
    assert connections == []


def test_any_internal_answer_refuses_the_host(connections: list) -> None:
    resolver = fake_resolver({"mixed.example": ["8.8.8.8", "192.168.0.10"]})
    result = check_deployment_url("https://mixed.example/", resolver=resolver)
    assert result.ok is False
    assert "192.168.0.10" in result.reason and "private" in result.reason
    assert connections == []


def test_real_localhost_resolution_is_refused(server: Server, connections: list) -> None:
    result = check_deployment_url(f"http://localhost:{server.port}/ok")
    assert result.ok is False
    assert "loopback" in result.reason
    assert server.requests == [] and connections == []


def test_unresolvable_host_fails_cleanly(connections: list) -> None:
    result = check_deployment_url("https://nowhere.example/", resolver=fake_resolver({}))
    assert result.ok is False
    assert result.reason.startswith("could not resolve nowhere.example")
    assert connections == []


def test_dns_rebinding_connects_only_to_the_validated_address(
    server: Server, connections: list
) -> None:
    answers = iter([["8.8.8.8"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    result = check_deployment_url(f"http://rebind.example:{server.port}/ok", resolver=rebinding)
    assert result.ok is False
    # The single validated answer is the one connected to; 127.0.0.1 is never reached.
    assert connections == [("8.8.8.8", server.port)]
    assert calls == ["rebind.example"]
    assert server.requests == []


# --- redirects into internal space ---------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local", "169.254.169.254"),
        ("http://10.0.0.1/admin", "private", "10.0.0.1"),
        ("http://192.168.1.1/", "private", "192.168.1.1"),
        ("http://[fd00::1]/", "private", "fd00::1"),
    ],
)
def test_redirect_into_internal_address_is_refused(
    server: Server, connections: list, target: str, kind: str, address: str
) -> None:
    result = check_deployment_url(f"{server.base}/to?{target}", policy=LOCAL)
    assert result.ok is False
    assert result.reason == f"refused: {address} is a {kind} address"
    assert result.redirects == (target,)
    assert result.status_code == 302
    assert {host for host, _ in connections} == {"127.0.0.1"}


def test_redirect_into_localhost_is_refused(server: Server, connections: list) -> None:
    # AddressPolicy works on IPs, so "localhost" is modelled the way /etc/hosts usually
    # answers it: both loopbacks. One internal answer is enough to refuse.
    resolver = fake_resolver({"app.example": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    url = f"http://app.example:{server.port}/to?http://localhost:{server.port}/ok"
    result = check_deployment_url(url, policy=LOCAL, resolver=resolver)
    assert result.ok is False
    assert result.reason == "refused: localhost resolves to ::1, a loopback address"
    assert [r["path"] for r in server.requests] == [f"/to?http://localhost:{server.port}/ok"]


def test_redirect_rebinding_is_rechecked_per_connection(server: Server, connections: list) -> None:
    # Same host on each hop; the second lookup flips to an internal address and must be refused.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    resolver = lambda host, port: next(answers)  # noqa: E731
    url = f"http://flip.example:{server.port}/to?http://flip.example:{server.port + 1}/ok"
    result = check_deployment_url(url, policy=LOCAL, resolver=resolver)
    assert result.ok is False
    assert result.reason == "refused: flip.example resolves to 10.0.0.1, a private address"
    assert connections == [("127.0.0.1", server.port)]


def test_too_many_redirects(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/count/6", policy=LOCAL, max_redirects=5)
    assert result.ok is False
    assert "too many redirects" in result.reason
    assert len(result.redirects) == 5
    assert len(server.requests) == 6


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x/"])
def test_redirect_to_non_http_scheme_fails(server: Server, target: str) -> None:
    result = check_deployment_url(f"{server.base}/to?{target}", policy=LOCAL)
    assert result.ok is False
    assert "only http(s)" in result.reason
    assert result.redirects == (target,)


# --- HTTP failures -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [300, 404, 500, 503])
def test_non_2xx_is_not_ok(server: Server, status: int) -> None:
    url = f"{server.base}/status/{status}"
    result = check_deployment_url(url, policy=LOCAL)
    assert result.ok is False
    assert result.status_code == status
    assert result.reason == f"HTTP {status} from {url}"


def test_slow_server_times_out(server: Server) -> None:
    started = time.monotonic()
    result = check_deployment_url(f"{server.base}/slow", policy=LOCAL, timeout=0.3)
    assert result.ok is False
    assert result.reason == "timed out after 0.3 s"
    assert time.monotonic() - started < 3


def test_refused_port_fails_cleanly(server: Server) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    result = check_deployment_url(f"http://127.0.0.1:{closed_port}/", policy=LOCAL)
    assert result.ok is False
    assert result.reason.startswith("connection failed")


def test_tls_to_plain_http_server_fails_cleanly(server: Server) -> None:
    result = check_deployment_url(f"https://127.0.0.1:{server.port}/ok", policy=LOCAL)
    assert result.ok is False
    assert result.status_code is None
    assert result.reason.startswith("TLS error")


def test_huge_body_is_capped(server: Server) -> None:
    started = time.monotonic()
    result = check_deployment_url(f"{server.base}/huge", policy=LOCAL, max_bytes=100_000)
    assert time.monotonic() - started < 5
    assert result.ok is True
    # The Streamlit marker sits past the cap, so it was never read.
    assert result.streamlit is False


# --- Streamlit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://foo.streamlit.app/",
        "https://FOO.Streamlit.App/page",
        "https://streamlit.app",
        "https://foo.streamlit.app./",
        "http://share.streamlit.io/user/repo/main/app.py",
        "https://foo.streamlit.app:443/",
    ],
)
def test_streamlit_cloud_fails_before_any_traffic(url: str, connections: list) -> None:
    result = check_deployment_url(url, resolver=no_network)
    assert result.ok is False
    assert result.streamlit is True and result.streamlit_cloud is True
    assert "not a Streamlit demo" in result.reason
    assert result.status_code is None
    assert connections == []


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("streamlit.app.evil.example", False),
        ("notstreamlit.app", False),
        ("streamlit.io", False),
        ("a.b.streamlit.app", True),
    ],
)
def test_streamlit_cloud_host_matching(host: str, expected: bool) -> None:
    assert is_streamlit_cloud_host(host) is expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<html><head><title>Streamlit</title></head></html>", True),
        ('<script src="/static/js/streamlit-lib.js"></script>', True),
        ("<script>window.__streamlit = {}</script>", True),
        ("<noscript>You need to enable JavaScript to run this app.</noscript>Streamlit", True),
        ("<noscript>You need to enable JavaScript to run this app.</noscript>", False),
        ("<html><title>My RAG demo</title><p>built without streamlit</p></html>", False),
    ],
)
def test_streamlit_page_sniffing(html: str, expected: bool) -> None:
    assert looks_like_streamlit(html) is expected


def test_redirect_into_streamlit_cloud_fails(server: Server, connections: list) -> None:
    target = "https://my-portfolio.streamlit.app/"
    result = check_deployment_url(f"{server.base}/to?{target}", policy=LOCAL)
    assert result.ok is False
    assert result.streamlit_cloud is True
    assert result.redirects == (target,)
    assert {host for host, _ in connections} == {"127.0.0.1"}


def test_streamlit_looking_page_passes_with_warning(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/streamlit", policy=LOCAL)
    assert result.ok is True
    assert result.streamlit is True and result.streamlit_cloud is False
    assert len(result.warnings) == 1 and "Streamlit" in result.warnings[0]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "not a url",
        "",
        "http://",
        "https:///only-a-path",
        "http://example.com:99999/",
        "http://[::1",
        "//example.com/no-scheme",
    ],
)
def test_bad_input_fails_cleanly(url: str, connections: list) -> None:
    result = check_deployment_url(url, resolver=no_network)
    assert result.ok is False
    assert result.url == url
    assert result.status_code is None and result.latency_ms is None
    assert result.reason
    assert connections == []


# --- limits pinned (each found unpinned by mutation testing) ----------------------------------


def test_an_endless_body_is_read_only_up_to_the_cap(server: Server) -> None:
    # Were reading to go on past the cap, this body would run into the deadline and fail.
    result = check_deployment_url(f"{server.base}/endless", policy=LOCAL, max_bytes=100_000,
                                  timeout=5)
    assert result.ok is True, result.reason
    assert result.reason == "HTTP 200"


def test_the_deadline_bounds_the_whole_read_not_each_piece(server: Server) -> None:
    # Each byte comes well within the timeout; the body as a whole takes 4 s.
    result = check_deployment_url(f"{server.base}/drip", policy=LOCAL, timeout=0.5)
    assert result.ok is False
    assert result.reason == "timed out after 0.5 s"
    assert result.status_code == 200  # it got as far as the body


def test_latency_is_in_milliseconds(server: Server) -> None:
    started = time.monotonic()
    result = check_deployment_url(f"{server.base}/pause", policy=LOCAL)
    wall_ms = (time.monotonic() - started) * 1000
    assert result.latency_ms is not None and 250 <= result.latency_ms <= wall_ms


@pytest.mark.parametrize(("end", "seen"), [(2_000_000, True), (2_000_001, False)])
def test_the_default_body_cap_is_two_million_bytes(server: Server, end: int, seen: bool) -> None:
    result = check_deployment_url(f"{server.base}/marker/{end}", policy=LOCAL)
    assert result.ok is True
    assert result.streamlit is seen


def test_the_default_redirect_limit_is_five(server: Server) -> None:
    assert check_deployment_url(f"{server.base}/count/5", policy=LOCAL).ok is True
    six = check_deployment_url(f"{server.base}/count/6", policy=LOCAL)
    assert six.ok is False and six.reason == "too many redirects (more than 5)"


def test_the_default_timeout_is_ten_seconds() -> None:
    import inspect

    assert inspect.signature(check_deployment_url).parameters["timeout"].default == 10.0


def test_an_informational_status_alone_fails_the_gate(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/status/199", policy=LOCAL, timeout=2)
    assert result.ok is False


def test_299_is_still_2xx(server: Server) -> None:
    assert check_deployment_url(f"{server.base}/status/299", policy=LOCAL).ok is True


@pytest.mark.parametrize("port", [0, 65536, 70000])
def test_ports_outside_1_to_65535_are_refused_before_any_lookup(port: int) -> None:
    result = check_deployment_url(f"http://example.com:{port}/", resolver=no_network)
    assert result.ok is False and result.reason == f"not a valid port: {port}"


@pytest.mark.parametrize("port", [1, 65535])
def test_ports_1_and_65535_are_valid(port: int, connections: list) -> None:
    # Valid, so the check goes on to resolve the host (here: to a private address).
    result = check_deployment_url(f"http://example.com:{port}/",
                                  resolver=fake_resolver({"example.com": ["10.0.0.7"]}))
    assert result.ok is False and result.reason.startswith("refused:"), result.reason
    assert connections == []


def test_site_local_ipv6_is_refused() -> None:
    assert AddressPolicy().check(ip_address("fec0::1")) == "site-local"
    assert AddressPolicy().check(ip_address("feff::1")) == "site-local"


def test_a_reply_that_is_not_http_fails_with_its_kind(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/garbage", policy=LOCAL, timeout=3)
    assert result.ok is False
    assert result.reason.startswith("request failed: RemoteProtocolError: "), result.reason


def test_a_host_with_no_addresses_is_refused_with_that_reason(connections: list) -> None:
    result = check_deployment_url("https://empty.example/",
                                  resolver=fake_resolver({"empty.example": []}))
    assert result.ok is False
    assert result.reason == "could not resolve empty.example: no addresses"
    assert connections == []


def test_the_reasons_read_as_sentences(server: Server) -> None:
    # What the learner reads, word for word (found unpinned by mutation testing).
    assert check_deployment_url("http://10.0.0.1/").reason == \
        "refused: 10.0.0.1 is a private address"
    assert check_deployment_url("http://0.0.0.0/").reason == \
        "refused: 0.0.0.0 is an unspecified address"
    one = check_deployment_url(f"{server.base}/r2", policy=LOCAL)
    assert one.reason == "HTTP 200 after 1 redirect"
    page = check_deployment_url(f"{server.base}/streamlit", policy=LOCAL)
    assert page.reason == "HTTP 200"
    assert page.warnings == (
        "this page looks like a Streamlit app; fine for a demo, but a portfolio project "
        "reads better with a real front end or API",)


# --- TLS, proxies, encodings, connecting: the rest of what mutation testing found ------------


def test_a_url_that_is_not_a_string_fails_cleanly(connections: list) -> None:
    result = check_deployment_url(123, resolver=no_network)  # type: ignore[arg-type]
    assert result.ok is False and result.reason == "not a URL: 123"
    assert connections == []


def test_a_page_that_is_not_utf8_is_read_past_its_bad_bytes(server: Server) -> None:
    result = check_deployment_url(f"{server.base}/latin", policy=LOCAL)
    assert result.ok is True and result.reason == "HTTP 200"
    assert result.streamlit is True  # the marker after the bad bytes was still seen


def test_the_check_asks_for_an_uncompressed_body(server: Server) -> None:
    # A compressed body would make the byte cap count compressed bytes (a zip bomb).
    check_deployment_url(f"{server.base}/ok", policy=LOCAL)
    sent = {k.lower(): v for k, v in server.requests[-1]["headers"].items()}
    assert sent["accept-encoding"].lower() == "identity"


@dataclass
class Proxy:
    url: str
    seen: list[str]


@pytest.fixture
def env_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Proxy]:
    """A proxy on 127.0.0.1 named by the usual variables; it answers every request 200."""
    seen: list[str] = []

    class ProxyHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield Proxy(url, seen)
    httpd.shutdown()
    httpd.server_close()


def test_the_environment_lends_the_check_no_proxy_and_no_credentials(
        server: Server, env_proxy: Proxy, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Through a proxy, the address guard would check the proxy, not the host it fetches;
    # and the operator's ~/.netrc passwords must never go to a host a learner names.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login operator password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    result = check_deployment_url(f"{server.base}/ok", policy=LOCAL)
    assert result.ok is True
    assert env_proxy.seen == []
    assert [r["path"] for r in server.requests] == ["/ok"]
    sent = {k.lower() for k in server.requests[0]["headers"]}
    assert "authorization" not in sent


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file), made by openssl."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = str(folder / "cert.pem"), str(folder / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", key, "-out", cert, "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[str, str]) -> Iterator[Server]:
    srv = Server(base="", port=0)
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), type("TLSHandler", (Handler,), {"server_state": srv}))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    srv.port = httpd.server_address[1]
    srv.base = f"https://127.0.0.1:{srv.port}"
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield srv
    srv.stop.set()
    httpd.shutdown()
    httpd.server_close()


def test_https_with_a_trusted_certificate_is_checked_to_the_end(
        tls_server: Server, certificate: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certificate[0])  # trust this test's own CA
    result = check_deployment_url(f"{tls_server.base}/r1", policy=LOCAL, timeout=5)
    assert result.ok is True, result.reason
    assert result.reason == "HTTP 200 after 2 redirects"
    assert result.final_url == f"{tls_server.base}/ok"
    # The deadline still bounds reads once the connection is TLS.
    drip = check_deployment_url(f"{tls_server.base}/drip", policy=LOCAL, timeout=0.5)
    assert drip.ok is False and drip.reason == "timed out after 0.5 s"


def test_https_with_an_untrusted_certificate_fails_as_tls(tls_server: Server) -> None:
    result = check_deployment_url(f"{tls_server.base}/ok", policy=LOCAL, timeout=5)
    assert result.ok is False
    assert result.reason.startswith("TLS error")


def finishes(check: Callable[[], DeploymentCheck], within: float) -> DeploymentCheck:
    """`check()`, which must return in `within` seconds (a check that hangs fails here)."""
    out: list[DeploymentCheck] = []
    worker = threading.Thread(target=lambda: out.append(check()), daemon=True)
    worker.start()
    worker.join(within)
    assert out, f"the check was still running after {within} s"
    return out[0]


def test_a_tls_handshake_that_never_answers_ends_at_the_deadline() -> None:
    # Accepts the connection and never says a word: the handshake waits on the deadline.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        result = finishes(lambda: check_deployment_url(
            f"https://127.0.0.1:{port}/", policy=LOCAL, timeout=0.5), within=10)
    assert result.ok is False and result.reason == "timed out after 0.5 s"


def test_a_host_that_drops_connection_attempts_ends_at_the_deadline() -> None:
    # A full accept queue: Linux drops the next SYNs, as a firewalled host does.
    with socket.socket() as listener, socket.socket() as first:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        first.connect(("127.0.0.1", port))
        result = finishes(lambda: check_deployment_url(
            f"http://127.0.0.1:{port}/", policy=LOCAL, timeout=0.5), within=10)
    assert result.ok is False and result.reason == "timed out after 0.5 s"
