"""Fetch (or POST to) a user-supplied URL server-side without letting it reach internal networks.

A source URL comes from a user, so fetching it must not become a way into the machines
around the server (SSRF). The address check happens where the socket is opened: our httpcore
network backend resolves the host, refuses the connection if any resolved address is not
public, and connects to an address it has just checked. A DNS answer that changes between a
check and the connect (rebinding) therefore cannot slip through, and every redirect hop is
checked the same way. No database access; errors are `SourceFetchError`, already classified.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass

import httpcore
import httpx

from .urls import url_host

USER_AGENT = "reportdesk-source-fetcher/1.0"
DEFAULT_CONTENT_TYPES = frozenset(
    {"text/html", "text/plain", "text/markdown", "application/pdf", "application/xhtml+xml"}
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Local-use NAT64 prefixes may embed the IPv4 address at several offsets; refuse them all.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


@dataclass(frozen=True)
class FetchedDocument:
    url: str  # final URL after redirects
    content_type: str  # media type without parameters, lower-case
    charset: str | None
    body: bytes
    status_code: int


class SourceFetchError(Exception):
    """A URL that could not be fetched.

    `message` is one sentence a non-engineer understands. `transient` says whether trying
    again later may succeed (timeouts, dropped connections, 5xx, 429) or not (refused
    addresses, 4xx, too big, unsupported type).
    """

    def __init__(self, message: str, *, transient: bool):
        super().__init__(message)
        self.message = message
        self.transient = transient


def is_public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True when `ip` is a globally routable unicast address, looking inside IPv6 embeddings."""
    if isinstance(ip, ipaddress.IPv6Address):
        # Teredo tunnels to an arbitrary IPv4 peer and is obsolete; no source needs it.
        if ip.teredo is not None or ip in _LOCAL_NAT64 or ip.is_site_local:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(embedded)
    # is_global alone lets multicast through, and its exact ranges vary across Python
    # patch releases, so every category is refused explicitly as well.
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_url(url: str, *, allowed_hosts: Iterable[str] = ()) -> None:
    """Refuse, without any network access, a URL that fetch_url must never request."""
    try:
        parsed = httpx.URL(url)
        parsed.host  # decodes an internationalised name: a malformed one raises UnicodeError here
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise SourceFetchError(f"{url} is not a valid web address.", transient=False) from exc
    if parsed.scheme not in ("http", "https"):
        raise SourceFetchError(
            f"Only web addresses starting with http:// or https:// can be fetched, not {url}.",
            transient=False,
        )
    if not parsed.host:
        raise SourceFetchError(f"The address {url} has no host name.", transient=False)
    if parsed.userinfo:
        raise SourceFetchError(
            "Web addresses containing a user name or password (user:password@host) "
            "are not allowed.",
            transient=False,
        )
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise SourceFetchError(
            f"The address {url} has an invalid port number ({parsed.port}).", transient=False
        )
    literal = _literal_address(parsed.host)
    if literal is not None and not is_public_address(literal):
        raise _refused(host=parsed.host, ip=literal)
    name = _normalise_host(parsed.host)
    # RFC 6761 names always mean this machine; saying so here beats a resolver's answer.
    is_localhost = name == "localhost" or name.endswith(".localhost")
    if is_localhost and name not in _host_set(allowed_hosts):
        raise SourceFetchError(
            f"The address {parsed.host} points to this server itself, which reportdesk may "
            "not fetch.",
            transient=False,
        )


def fetch_url(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    max_redirects: int,
    allowed_hosts: Iterable[str] = (),
    allowed_content_types: Iterable[str] = DEFAULT_CONTENT_TYPES,
) -> FetchedDocument:
    """GET `url`, following up to `max_redirects` redirects, within `timeout` seconds in total.

    `allowed_hosts` are host names (not IP addresses) that may resolve to internal addresses.
    """
    hosts = _host_set(allowed_hosts)
    content_types = frozenset(media_type.lower() for media_type in allowed_content_types)
    with _checked_client(hosts=hosts, timeout=timeout, user_agent=USER_AGENT) as client:
        current = url
        for hop in range(max_redirects + 1):
            try:
                result = _fetch_once(
                    client,
                    url=current,
                    allowed_hosts=hosts,
                    max_bytes=max_bytes,
                    content_types=content_types,
                    timeout=timeout,
                )
            except SourceFetchError as exc:
                if hop == 0:
                    raise
                raise SourceFetchError(
                    f"{exc.message.rstrip('.')} (reached through a redirect from {url}).",
                    transient=exc.transient,
                ) from exc
            if isinstance(result, FetchedDocument):
                return result
            current = result
    raise SourceFetchError(
        f"{url} redirected more than {max_redirects} times, so reportdesk gave up.",
        transient=False,
    )


def _checked_client(*, hosts: frozenset[str], timeout: float, user_agent: str) -> httpx.Client:
    """The one way out to an address someone typed in: every connection checked by
    _CheckedBackend, the whole exchange within `timeout`, redirects left to the caller."""
    return httpx.Client(
        transport=_CheckedTransport(backend=_CheckedBackend(allowed_hosts=hosts, deadline=time.monotonic() + timeout)),
        # Environment proxies would connect on our behalf, past the address check.
        trust_env=False,
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": user_agent},
    )


def _fetch_once(
    client: httpx.Client,
    *,
    url: str,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    content_types: frozenset[str],
    timeout: float,
) -> FetchedDocument | str:
    """One request: the document, or the URL a redirect points to."""
    check_url(url, allowed_hosts=allowed_hosts)
    with _transport_errors(url=url, timeout=timeout), client.stream("GET", url) as response:
        if response.has_redirect_location:
            return str(response.url.join(response.headers["location"]))
        return _read_document(response, max_bytes=max_bytes, content_types=content_types)


@contextmanager
def _transport_errors(*, url: str, timeout: float, verb: str = "Fetching"):
    """httpx's transport errors as SourceFetchError, worded for people."""
    host = httpx.URL(url).host
    try:
        yield
    except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: a malformed internationalised name
        raise SourceFetchError(
            f"The server at {host} redirected to an invalid web address.", transient=False
        ) from exc
    except httpx.TimeoutException as exc:
        raise SourceFetchError(
            f"{verb} {url} timed out after {timeout:g} s.", transient=True
        ) from exc
    except httpx.DecodingError as exc:
        raise SourceFetchError(
            f"The server at {host} sent a damaged response.", transient=False
        ) from exc
    except httpx.TransportError as exc:
        raise SourceFetchError(
            f"reportdesk could not get a response from {host}; trying again later may work.",
            transient=True,
        ) from exc


@dataclass(frozen=True)
class PostResult:
    status_code: int
    body: str  # the start of the answer, for a delivery log


def post_url(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allowed_hosts: Iterable[str] = (),
    max_response_bytes: int = 2048,
    user_agent: str = "reportdesk-webhooks/1.0",
) -> PostResult:
    """POST `body` to `url` once, behind the same address checks as fetch_url (outbound
    webhooks and chat messages go to addresses people type in, just like sources).

    Redirects are not followed: a receiver answers where it was registered, and a 3xx is
    reported as the status it is. Any answer is a PostResult; no answer is SourceFetchError,
    whose message names the receiver's host, never its URL: a webhook's URL is often its
    credential, and the error is logged and shown on the job's page.
    """
    hosts = _host_set(allowed_hosts)
    try:
        check_url(url, allowed_hosts=hosts)
        with _checked_client(hosts=hosts, timeout=timeout, user_agent=user_agent) as client:
            with _transport_errors(url=url, timeout=timeout, verb="Posting to"):
                with client.stream("POST", url, content=body, headers=headers) as response:
                    excerpt = bytearray()
                    for chunk in response.iter_raw():
                        excerpt += chunk
                        if len(excerpt) >= max_response_bytes:
                            break
                    return PostResult(
                        status_code=response.status_code,
                        body=bytes(excerpt[:max_response_bytes]).decode("utf-8", "replace"),
                    )
    except SourceFetchError as exc:
        raise SourceFetchError(exc.message.replace(url, url_host(url) or "the receiver"), transient=exc.transient) from None


def _read_document(
    response: httpx.Response, *, max_bytes: int, content_types: frozenset[str]
) -> FetchedDocument:
    url = str(response.url)
    status = response.status_code
    phrase = httpx.codes.get_reason_phrase(status)
    if status == 429 or status >= 500:
        raise SourceFetchError(
            f"The server at {response.url.host} could not answer right now "
            f"(HTTP {status} {phrase}); trying again later may work.",
            transient=True,
        )
    if status >= 400:
        raise SourceFetchError(
            f"The server refused to return {url} (HTTP {status} {phrase}).", transient=False
        )
    if not 200 <= status < 300:
        raise SourceFetchError(
            f"The server answered {url} with HTTP {status} {phrase} instead of a document.",
            transient=False,
        )
    media_type, charset = _parse_content_type(response.headers.get("content-type", ""))
    if media_type not in content_types:
        raise SourceFetchError(
            f"{url} is {'a ' + media_type if media_type else 'an unlabelled'} file, which "
            f"reportdesk cannot use (it accepts {', '.join(sorted(content_types))}).",
            transient=False,
        )
    too_big = SourceFetchError(
        f"The document at {url} is larger than the {_format_size(max_bytes)} limit.",
        transient=False,
    )
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise too_big
    body = bytearray()
    # Decoded bytes are counted, so a small compressed body cannot expand past the limit.
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise too_big
    return FetchedDocument(
        url=url,
        content_type=media_type,
        charset=charset,
        body=bytes(body),
        status_code=status,
    )


class _CheckedBackend(httpcore.SyncBackend):
    """Opens TCP connections only to checked addresses, within the fetch's total deadline."""

    def __init__(self, *, allowed_hosts: frozenset[str], deadline: float):
        self._allowed_hosts = allowed_hosts
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host=host, port=port)
        trusted = _literal_address(host) is None and _normalise_host(host) in self._allowed_hosts
        if not trusted:
            for ip in addresses:
                if not is_public_address(ip):
                    raise _refused(host=host, ip=ip)
        error: httpcore.ConnectError | None = None
        for ip in addresses:
            try:
                stream = super().connect_tcp(
                    str(ip),
                    port,
                    timeout=_budget(
                        timeout, deadline=self._deadline, error=httpcore.ConnectTimeout
                    ),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return _DeadlineStream(stream, deadline=self._deadline)
        assert error is not None  # _resolve never returns an empty list
        raise error


class _DeadlineStream(httpcore.NetworkStream):
    """A stream whose every read and write fits in what is left of the fetch's total time.

    httpx's timeouts apply to each socket operation, so a server trickling bytes could
    otherwise hold a fetch open indefinitely.
    """

    def __init__(self, stream: httpcore.NetworkStream, *, deadline: float):
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(
            max_bytes, _budget(timeout, deadline=self._deadline, error=httpcore.ReadTimeout)
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(
            buffer, _budget(timeout, deadline=self._deadline, error=httpcore.WriteTimeout)
        )

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context,
            server_hostname,
            _budget(timeout, deadline=self._deadline, error=httpcore.ConnectTimeout),
        )
        return _DeadlineStream(stream, deadline=self._deadline)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _CheckedTransport(httpx.HTTPTransport):
    """httpx's own transport (request mapping, error mapping) over our checked backend."""

    def __init__(self, *, backend: _CheckedBackend):
        ssl_context = httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.ConnectionPool(ssl_context=ssl_context, network_backend=backend)


def _budget(
    timeout: float | None, *, deadline: float, error: type[httpcore.TimeoutException]
) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("The total time allowed for the fetch has run out.")
    return left if timeout is None else min(timeout, left)


def _resolve(*, host: str, port: int) -> list[IPAddress]:
    try:
        results = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise SourceFetchError(
            f"The host name {host} could not be found.",
            transient=exc.errno not in (socket.EAI_NONAME, socket.EAI_NODATA),
        ) from exc
    addresses = list(
        dict.fromkeys(
            ipaddress.ip_address(sockaddr[0])
            for family, _, _, _, sockaddr in results
            if family in (socket.AF_INET, socket.AF_INET6)
        )
    )
    if not addresses:
        raise SourceFetchError(f"The host name {host} could not be found.", transient=False)
    return addresses


def _literal_address(host: str) -> IPAddress | None:
    """The address `host` spells, in any form the system resolver accepts (0x7f.1, 2130706433,
    and with a trailing dot, 169.254.169.254., which a resolver reads as the same address)."""
    host = host.rstrip(".") or host
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _refused(*, host: str, ip: IPAddress) -> SourceFetchError:
    if _literal_address(host) is not None:
        message = (
            f"The address {host} is a private network address, which reportdesk may not fetch."
        )
    else:
        message = (
            f"The address {host} points to a private network address ({ip}), which "
            "reportdesk may not fetch."
        )
    return SourceFetchError(message, transient=False)


def _normalise_host(host: str) -> str:
    return host.lower().rstrip(".")


def _host_set(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(_normalise_host(host) for host in hosts)


def _parse_content_type(header: str) -> tuple[str, str | None]:
    media_type, _, parameters = header.partition(";")
    charset = None
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'").lower() or None
    return media_type.strip().lower(), charset


def _format_size(n_bytes: int) -> str:
    if n_bytes >= 1024 * 1024:
        return f"{round(n_bytes / (1024 * 1024), 1):g} MB"
    if n_bytes >= 1024:
        return f"{round(n_bytes / 1024, 1):g} KB"
    return f"{n_bytes} bytes"
