"""The coach's own fetch of a learner's deployed URL, hardened against SSRF.

The URL is untrusted and may point (directly, via DNS or via a redirect) into our own network,
so every TCP connection resolves, validates and then connects to exactly the validated address:
a DNS answer that changes between check and connect (rebinding) has nothing to win.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

USER_AGENT = "portfolio-coach-deployment-check/1"
STREAMLIT_CLOUD_REASON = (
    "Streamlit Community Cloud host: the gate needs a real URL, not a Streamlit demo"
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not private, not global
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_STREAMLIT_MARKERS = ("<title>streamlit</title>", "window.__streamlit", "/_stcore/")
_STREAMLIT_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"'][^\"']*streamlit", re.IGNORECASE)


@dataclass(frozen=True)
class DeploymentCheck:
    ok: bool
    url: str
    status_code: int | None
    final_url: str | None
    latency_ms: int | None
    reason: str
    streamlit: bool = False
    streamlit_cloud: bool = False
    redirects: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        lists = {"redirects": list(self.redirects), "warnings": list(self.warnings)}
        return {**dataclasses.asdict(self), **lists}


class AddressPolicy:
    def __init__(self, allow_private: bool = False, extra_allowed: Sequence[IPNetwork] = ()):
        self.allow_private = allow_private
        self.extra_allowed = tuple(extra_allowed)

    def check(self, ip: IPAddress) -> str | None:
        """None if `ip` may be contacted, else the kind of address that makes it internal."""
        if self.allow_private or any(ip in net for net in self.extra_allowed):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            # An IPv6 form can smuggle an IPv4 address the kernel or a gateway will reach.
            embedded = ip.ipv4_mapped or ip.sixtofour
            if embedded is None and ip in _NAT64:
                embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if embedded is not None:
                return self.check(embedded)
        # Order matters: e.g. 127.0.0.1 is also "private", 240.0.0.1 is also "private".
        for kind, hit in (
            ("unspecified", ip.is_unspecified),
            ("loopback", ip.is_loopback),
            ("link-local", ip.is_link_local),
            # fec0::/10, deprecated (RFC 3879) but still routed inside some networks.
            ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
            ("multicast", ip.is_multicast),
            ("shared address space", ip in _SHARED),
            ("reserved", ip.is_reserved),
            ("private", ip.is_private),
        ):
            if hit:
                return kind
        return None if ip.is_global else "non-global"


class _Blocked(Exception):
    """Raised from inside the transport so the refusal reason survives httpx unchanged."""


class _StreamlitCloud(_Blocked):
    pass


class AddressRefused(_Blocked):
    """A host whose address the policy refuses, or that does not resolve."""


def validated_addresses(host: str, port: int, policy: AddressPolicy,
                        resolver: Resolver | None = None) -> list[IPAddress]:
    """Every address `host` resolves to, all of them allowed by `policy`, or AddressRefused.
    Callers connect to these addresses themselves (never re-resolve), so a DNS answer that
    changes between the check and the connection has nothing to win. Shared by the
    deployment check and the repository clone."""
    host = host.strip("[]")
    try:
        ips, literal = [ipaddress.ip_address(host)], True  # checked like any DNS answer
    except ValueError:
        literal = False
        try:
            answers = (resolver or _system_resolver)(host, port)
            ips = list(dict.fromkeys(ipaddress.ip_address(a) for a in answers))
        except (OSError, ValueError) as exc:
            raise AddressRefused(f"could not resolve {host}: {exc}") from exc
    if not ips:
        raise AddressRefused(f"could not resolve {host}: no addresses")
    for ip in ips:
        kind = policy.check(ip)
        if kind is not None:
            where = f"{ip} is" if literal else f"{host} resolves to {ip},"
            article = "an" if kind[0] in "aeiou" else "a"
            raise AddressRefused(f"refused: {where} {article} {kind} address")
    return ips


def _system_resolver(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _within(deadline: float, timeout: float | None) -> float:
    """The timeout of one network operation, cut so that it ends by the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the check's deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read, write and TLS handshake ends by the check's deadline:
    a server dripping bytes just under the per-read timeout cannot keep a check running."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _within(self._deadline, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _within(self._deadline, timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        tls = self._inner.start_tls(ssl_context, server_hostname,
                                    _within(self._deadline, timeout))
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, policy: AddressPolicy, resolver: Resolver, deadline: float) -> None:
        self._policy = policy
        self._resolver = resolver
        self._deadline = deadline

    def _validated(self, host: str, port: int) -> list[IPAddress]:
        return validated_addresses(host, port, self._policy, self._resolver)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for ip in self._validated(host, port):
            try:
                # Connect to the validated IP itself; TLS still verifies against the hostname.
                stream = super().connect_tcp(str(ip), port, _within(self._deadline, timeout),
                                             local_address, socket_options)
                return _DeadlineStream(stream, self._deadline)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or _Blocked(f"could not connect to {host}")


def is_streamlit_cloud_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host in ("streamlit.app", "share.streamlit.io") or host.endswith(".streamlit.app")


def looks_like_streamlit(body: str) -> bool:
    text = body.lower()
    if any(marker in text for marker in _STREAMLIT_MARKERS) or _STREAMLIT_SCRIPT.search(text):
        return True
    return "streamlit" in text and "enable javascript to run this app" in text


@dataclass
class _Progress:
    """How far the fetch got, so a failure part-way can still report status and hops."""

    url: httpx.URL
    status: int | None = None
    redirects: list[str] = field(default_factory=list)
    body: bytes = b""


def _parse(url: str, base: httpx.URL | None = None) -> httpx.URL | str:
    """The URL to fetch, or why it cannot be. httpx parses it so the gate sees what is fetched."""
    try:
        parsed = base.join(url) if base else httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        return f"not a valid URL: {exc}"
    if parsed.scheme not in ("http", "https"):
        return f"only http(s) URLs can be checked, got {url!r}"
    if not parsed.host:
        return f"URL has no host: {url!r}"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"not a valid port: {parsed.port}"
    return parsed


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    # Raw bytes (we ask for identity encoding) so a compression bomb cannot bypass the cap.
    # Reading stops at the cap (the connection is dropped, not drained); the deadline is
    # enforced on every read by the connection itself (_DeadlineStream).
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) >= max_bytes:
            break
    return bytes(body[:max_bytes])


def _follow(
    client: httpx.Client, progress: _Progress, max_redirects: int, max_bytes: int
) -> None:
    # Redirects are followed by hand so every hop gets the Streamlit check and is recorded;
    # the address check happens per connection inside the guarded backend.
    while True:
        if is_streamlit_cloud_host(progress.url.host):
            raise _StreamlitCloud(STREAMLIT_CLOUD_REASON)
        # Every hop shares the one deadline, enforced per network operation (_within).
        with client.stream("GET", progress.url) as response:
            progress.status = response.status_code
            # A 3xx without a Location (300 Multiple Choices) is an answer, not a hop.
            if not response.is_redirect or "location" not in response.headers:
                progress.body = _read_capped(response, max_bytes)
                return
            if len(progress.redirects) >= max_redirects:
                raise _Blocked(f"too many redirects (more than {max_redirects})")
            location = response.headers["location"]
            target = _parse(location, base=progress.url)
            progress.redirects.append(str(target) if isinstance(target, httpx.URL) else location)
            if isinstance(target, str):
                raise _Blocked(f"redirect to an unusable URL: {target}")
            progress.url = target


def _failure_reason(exc: Exception, timeout: float) -> str:
    if isinstance(exc, _Blocked):
        return str(exc)
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        kind = "TLS error" if "SSL" in str(exc) else "connection failed"
        return f"{kind}: {exc}"
    return f"request failed: {type(exc).__name__}: {exc}"


def _client(policy: AddressPolicy, resolver: Resolver, timeout: float,
            deadline: float) -> httpx.Client:
    # httpx has no public hook for a network backend, so swap the transport's pool for one
    # built the same way but connecting through the guarded backend.
    transport = httpx.HTTPTransport()
    transport._pool.close()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=_GuardedBackend(policy, resolver, deadline),
    )
    # trust_env=False: nothing from the environment (proxies, netrc) may reach a learner's
    # host. httpx already ignores environment proxies when handed a transport; this keeps
    # it so should that change, since a proxy would bypass the guarded backend.
    return httpx.Client(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )


def check_deployment_url(
    url: str,
    *,
    policy: AddressPolicy | None = None,
    timeout: float = 10.0,
    max_redirects: int = 5,
    max_bytes: int = 2_000_000,
    resolver: Resolver | None = None,
) -> DeploymentCheck:
    """Fetch `url` the way the deploy gate needs it; never raises, every failure is ok=False."""
    parsed = _parse(url) if isinstance(url, str) else f"not a URL: {url!r}"
    if isinstance(parsed, str):
        return DeploymentCheck(False, str(url), None, None, None, parsed)
    start = time.monotonic()
    progress = _Progress(parsed)

    def result(ok: bool, reason: str, **flags: Any) -> DeploymentCheck:
        ms, hops = int((time.monotonic() - start) * 1000), tuple(progress.redirects)
        return DeploymentCheck(
            ok, url, progress.status, str(progress.url), ms, reason, redirects=hops, **flags
        )

    try:
        with _client(policy or AddressPolicy(), resolver or _system_resolver, timeout,
                     start + timeout) as client:
            _follow(client, progress, max_redirects, max_bytes)
    except _StreamlitCloud as exc:
        return result(False, str(exc), streamlit=True, streamlit_cloud=True)
    except Exception as exc:  # the gate must report, never crash the coach
        return result(False, _failure_reason(exc, timeout))

    status, count = progress.status, len(progress.redirects)
    if status is None or not 200 <= status < 300:
        return result(False, f"HTTP {status} from {progress.url}")
    after = f" after {count} redirect{'s' if count != 1 else ''}" if count else ""
    if not looks_like_streamlit(progress.body.decode("utf-8", errors="ignore")):
        return result(True, f"HTTP {status}{after}")
    warning = (
        "this page looks like a Streamlit app; fine for a demo, but a portfolio project "
        "reads better with a real front end or API"
    )
    return result(True, f"HTTP {status}{after}", streamlit=True, warnings=(warning,))
