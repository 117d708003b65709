"""Fetching source URLs: SSRF refusals, limits and error classes, against a loopback server."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time

import pytest

from sources.fetching import SourceFetchError, check_url, fetch_url, is_public_address

HTML = b"<!doctype html><html><head><title>Hi</title></head><body><p>Hello</p></body></html>"
LIMITS = {"max_bytes": 1024, "timeout": 5.0, "max_redirects": 3}


def fetch(url: str, **overrides: object):
    options = {**LIMITS, "allowed_hosts": ["localhost"], **overrides}
    return fetch_url(url, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://2130706433:{port}/",
        "http://0177.0.0.1:{port}/",
        "http://0x7f000001:{port}/",
        "http://0x7f.1:{port}/",
        "http://127.1:{port}/",
        "http://[::1]:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::ffff:7f00:1]:{port}/",
        "http://0.0.0.0:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[2002:7f00:1::]:{port}/",
        "http://[64:ff9b::7f00:1]:{port}/",
        "file:///etc/passwd",
        "ftp://localhost:{port}/",
        "gopher://localhost:{port}/_GET%20/",
        "http://user:pw@localhost:{port}/",
        "http://localhost:0/",
        "http:///no-host",
        "http://xn--/",  # a malformed internationalised name
        "https://xn--zz-.example/",
    ],
)
def test_ssrf_attempts_are_refused_before_connecting(site, connections, url):
    # given a page that would be served to anyone who reached the server
    site.route("/", body=b"internal", headers={"Content-Type": "text/plain"})

    # when / then: refused even with localhost allowed, as an allowed name is not its address
    with pytest.raises(SourceFetchError) as refused:
        fetch(url.format(port=site.port))
    assert refused.value.transient is False
    assert connections == []
    assert site.requests == []


def test_private_address_refusal_says_what_happened(site, connections):
    with pytest.raises(SourceFetchError) as refused:
        fetch("http://10.0.0.5/")

    assert refused.value.message == (
        "The address 10.0.0.5 is a private network address, which reportdesk may not fetch."
    )


def test_the_ipv6_server_answers_so_its_refusal_means_something(site, connections):
    if not site.has_ipv6:
        pytest.skip("cannot bind ::1 on this machine")
    site.route("/", body=b"internal", headers={"Content-Type": "text/plain"})

    connection = http.client.HTTPConnection("::1", site.port, timeout=2)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"internal"
    connection.close()

    assert site.requests == ["/"]


def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(site, connections):
    # given a host name other than "localhost" that this machine resolves to loopback
    name = socket.gethostname()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(name, site.port)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if not all(ipaddress.ip_address(address).is_loopback for address in resolved):
        pytest.skip("this machine's name does not resolve to loopback only")
    site.route("/", body=b"internal", headers={"Content-Type": "text/plain"})

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/", host=name))

    assert "private network address (127." in refused.value.message
    assert connections == []
    assert site.requests == []


def test_a_redirect_into_loopback_is_refused(site, connections):
    # given an allowed page that redirects to a loopback address
    secret = site.url("/secret", host="127.0.0.1")
    site.route("/to-secret", status=302, headers={"Location": secret})
    site.route("/secret", body=b"secret", headers={"Content-Type": "text/plain"})

    # when
    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/to-secret"))

    # then the first hop was fetched and the secret never was
    assert refused.value.transient is False
    assert "private network address" in refused.value.message
    assert f"redirect from {site.url('/to-secret')}" in refused.value.message
    assert site.requests == ["/to-secret"]


def test_a_redirect_to_a_malformed_name_is_a_fetch_error(site, connections):
    site.route("/bad", status=302, headers={"Location": "http://xn--/"})

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/bad"))

    assert refused.value.transient is False and "redirected to an invalid web address" in refused.value.message


def test_a_redirect_chain_longer_than_the_limit_is_refused(site, connections):
    for hop in range(6):
        site.route(f"/hop/{hop}", status=302, headers={"Location": f"/hop/{hop + 1}"})

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/hop/0"), max_redirects=2)

    assert refused.value.transient is False
    assert "redirected more than 2 times" in refused.value.message
    assert site.requests == ["/hop/0", "/hop/1", "/hop/2"]


def test_an_html_page_is_fetched_through_an_allowed_host(site, connections):
    site.route("/page", body=HTML, headers={"Content-Type": "Text/HTML; charset=UTF-8"})

    document = fetch(site.url("/page"))

    assert document.url == site.url("/page")
    assert document.content_type == "text/html"
    assert document.charset == "utf-8"
    assert document.body == HTML
    assert document.status_code == 200
    assert {address[0] for address in connections} <= {"127.0.0.1", "::1"}


def test_redirects_within_the_limit_are_followed(site, connections):
    site.route("/old", status=301, headers={"Location": "/notes.txt"})
    site.route("/notes.txt", body=b"plain notes", headers={"Content-Type": "text/plain"})

    document = fetch(site.url("/old"))

    assert document.url == site.url("/notes.txt")
    assert document.content_type == "text/plain"
    assert document.charset is None
    assert document.body == b"plain notes"
    assert site.requests == ["/old", "/notes.txt"]


def test_the_fetcher_names_itself(site, connections):
    site.route("/", body=b"ok", headers={"Content-Type": "text/plain"})

    fetch(site.url("/"))

    assert site.user_agents == ["reportdesk-source-fetcher/1.0"]


def test_localhost_is_refused_unless_allowed(site, connections):
    site.route("/", body=b"ok", headers={"Content-Type": "text/plain"})

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/"), allowed_hosts=[])

    assert refused.value.message == (
        "The address localhost points to this server itself, which reportdesk may not fetch."
    )
    assert site.requests == []


def test_a_body_of_exactly_max_bytes_is_accepted(site, connections):
    site.route("/", body=b"x" * 1024, headers={"Content-Type": "text/plain"})

    assert len(fetch(site.url("/")).body) == 1024


@pytest.mark.parametrize("send_length", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_max_bytes_is_refused(site, connections, send_length):
    site.route(
        "/big", body=b"x" * 1025, headers={"Content-Type": "text/plain"}, send_length=send_length
    )

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/big"))

    assert refused.value.transient is False
    assert refused.value.message == (
        f"The document at {site.url('/big')} is larger than the 1 KB limit."
    )


def test_the_size_limit_is_named_in_megabytes(site, connections):
    site.route("/big", body=b"x" * 100, headers={"Content-Length": str(11 * 1024 * 1024),
               "Content-Type": "application/pdf"}, send_length=False)  # fmt: skip

    with pytest.raises(SourceFetchError, match="larger than the 10 MB limit"):
        fetch(site.url("/big"), max_bytes=10 * 1024 * 1024)


def test_a_server_that_does_not_answer_times_out(site, connections):
    site.route("/slow", hang=True)

    started = time.monotonic()
    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/slow"), timeout=0.5)

    assert refused.value.transient is True
    assert refused.value.message == f"Fetching {site.url('/slow')} timed out after 0.5 s."
    assert time.monotonic() - started < 2


def test_the_timeout_covers_the_whole_download(site, connections):
    # given a server sending one byte every 0.2 s, each read well within the timeout
    site.route("/drip", body=b"x" * 100, headers={"Content-Type": "text/plain"}, trickle=0.2)

    started = time.monotonic()
    with pytest.raises(SourceFetchError, match="timed out after 1 s") as refused:
        fetch(site.url("/drip"), timeout=1.0)

    assert refused.value.transient is True
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("status", "transient"),
    [(500, True), (503, True), (429, True), (404, False), (403, False), (410, False)],
)
def test_http_errors_are_classified(site, connections, status, transient):
    site.route("/", status=status, body=b"error", headers={"Content-Type": "text/html"})

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/"))

    assert refused.value.transient is transient
    assert f"HTTP {status}" in refused.value.message


def test_a_refused_connection_is_transient(closed_port, connections):
    with pytest.raises(SourceFetchError) as refused:
        fetch(f"http://localhost:{closed_port}/")

    assert refused.value.transient is True
    assert "could not get a response from localhost" in refused.value.message


@pytest.mark.parametrize(
    "headers", [{"Content-Type": "image/png"}, {}], ids=["image", "unlabelled"]
)
def test_a_disallowed_content_type_is_refused(site, connections, headers):
    site.route("/logo", body=b"\x89PNG\r\n", headers=headers)

    with pytest.raises(SourceFetchError) as refused:
        fetch(site.url("/logo"))

    assert refused.value.transient is False
    assert "reportdesk cannot use" in refused.value.message


def test_allowed_content_types_can_be_narrowed(site, connections):
    site.route("/", body=HTML, headers={"Content-Type": "text/html"})

    with pytest.raises(SourceFetchError, match="accepts application/pdf"):
        fetch(site.url("/"), allowed_content_types=["application/pdf"])


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]/", "http://2130706433/", "http://localhost/",
        # A trailing dot still spells the address (the resolver reads 169.254.169.254. as it).
        "http://169.254.169.254./latest/meta-data/", "http://127.0.0.1./", "http://2130706433./", "http://0x7f.1./",
    ],
)
def test_check_url_refuses_without_network_access(connections, url):
    with pytest.raises(SourceFetchError):
        check_url(url)
    assert connections == []


def test_check_url_accepts_an_allowed_name_and_public_addresses():
    check_url("http://localhost:8000/", allowed_hosts=["LOCALHOST"])
    check_url("https://example.com/report.pdf")
    check_url("http://93.184.216.34/")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("93.184.216.34", True),
        ("2606:4700::1", True),
        ("2002:808:808::", True),  # 6to4 around 8.8.8.8
        ("64:ff9b::808:808", True),  # NAT64 around 8.8.8.8
        ("127.0.0.1", False),
        ("127.255.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("::127.0.0.1", False),
        ("fe80::1", False),
        ("fec0::1", False),
        ("fc00::1", False),
        ("fd00::2", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("2002:7f00:1::", False),  # 6to4 around 127.0.0.1
        ("2002:a00:1::", False),  # 6to4 around 10.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 around 127.0.0.1
        ("64:ff9b:1::1", False),  # local-use NAT64
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo
    ],
)
def test_is_public_address(address, public):
    assert is_public_address(ipaddress.ip_address(address)) is public
