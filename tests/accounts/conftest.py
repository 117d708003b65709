"""A real OpenID Connect provider on loopback for the single sign-on tests: oidc-provider-mock
(Authlib under Flask) in a subprocess, with the client registered as a company's IdP admin
would register reportdesk."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import pytest


@dataclass
class IdentityProvider:
    base_url: str
    discovery: dict
    client_id: str = ""
    client_secret: str = ""

    def user(self, sub: str, **claims) -> None:
        """Create or change a user at the provider (its claims, groups included)."""
        response = httpx.put(f"{self.base_url}/users/{sub}", json=claims, timeout=5)
        assert response.status_code == 204, response.text

    def register(self, *, redirect_uri: str) -> None:
        response = httpx.post(
            self.discovery["registration_endpoint"],
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"}, timeout=5,
        )
        assert response.status_code == 201, response.text
        self.client_id, self.client_secret = response.json()["client_id"], response.json()["client_secret"]

    def sign_in(self, authorize_url: str, *, sub: str) -> str:
        """What a person does at the provider's page: choose who they are. Returns where the
        provider sends the browser back to (reportdesk's callback, with code and state)."""
        with httpx.Client(timeout=5) as browser:
            page = browser.get(authorize_url)
            assert page.status_code == 200, page.text
            answer = browser.post(authorize_url, data={"sub": sub})
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def identity_provider(tmp_path):
    port = _free_port()
    log = open(tmp_path / "oidc-provider.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port), "--require-registration"],
        stdout=log, stderr=subprocess.STDOUT, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                discovery = httpx.get(f"{base_url}/.well-known/openid-configuration", timeout=2).json()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(f"the OIDC provider did not start: {(tmp_path / 'oidc-provider.log').read_text()}")
                time.sleep(0.2)
        yield IdentityProvider(base_url=base_url, discovery=discovery)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def sso(identity_provider, settings):
    """reportdesk configured for the provider, as docs/configuration.md says."""
    identity_provider.register(redirect_uri="http://testserver/oidc/callback/")
    d = identity_provider.discovery
    settings.OIDC_RP_CLIENT_ID = identity_provider.client_id
    settings.OIDC_RP_CLIENT_SECRET = identity_provider.client_secret
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = d["authorization_endpoint"]
    settings.OIDC_OP_TOKEN_ENDPOINT = d["token_endpoint"]
    settings.OIDC_OP_USER_ENDPOINT = d["userinfo_endpoint"]
    settings.OIDC_OP_JWKS_ENDPOINT = d["jwks_uri"]
    # This provider signs with one key and names it in no `kid` header.
    settings.OIDC_VERIFY_KID = False
    settings.OIDC_PROVIDER_NAME = "Corp SSO"
    settings.OIDC_ROLE_MAP = "research-analysts=research-ops:requester, research-leads=research-ops:operator, reviewers=research-ops:reviewer"
    return identity_provider

