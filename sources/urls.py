"""URLs as the product compares them: a key for "the same page", a host, and domain lists
(a template's web search domains) normalised the way the web search tool takes them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# OpenAI's web search guide: an allow-list of up to 100 domains.
MAX_DOMAINS = 100
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def url_key(url: str) -> str:
    """A URL as compared: scheme and host folded, "www." and the fragment dropped, no trailing /."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip().lower()
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = f":{port}" if port and port not in (80, 443) else ""
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{path}{query}"


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().removeprefix("www.")
    except ValueError:
        return ""


def host_allowed(host: str, domains: list[str] | tuple[str, ...]) -> bool:
    """Is `host` one of `domains` or a subdomain of one (as the web search tool filters)?"""
    return any(host == d or host.endswith("." + d) for d in domains)


def domains_normalise(values) -> tuple[list[str], list[str]]:
    """(domains, problems): each entry as a bare lower-case host — no scheme, "www.", port or
    path — duplicates dropped, at most MAX_DOMAINS."""
    if not isinstance(values, list):
        return [], ["A list of domains, e.g. [\"europa.eu\", \"iea.org\"]."]
    domains: list[str] = []
    problems: list[str] = []
    for value in values:
        text = str(value).strip().lower() if isinstance(value, str) else ""
        host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
        host = host.removeprefix("www.").rstrip(".")
        if not _DOMAIN.match(host) or "." not in host:
            problems.append(f"{value!r} is not a domain.")
        elif host not in domains:
            domains.append(host)
    if len(domains) > MAX_DOMAINS:
        problems.append(f"{len(domains)} domains; the web search tool takes at most {MAX_DOMAINS}.")
    return domains, problems
