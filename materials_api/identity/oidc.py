"""OpenID Connect sign-in (authorization code flow with PKCE), the production option for
people: the city's identity provider (e.g. 一网通办 unified identity) proves who a person is;
Qiyema maps `<issuer>|<sub>` to an account it has granted, so the provider never decides what
anyone may do here."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import jwt
import requests

from chain.errors import Kind, QiyemaError


class OidcError(QiyemaError):
    """The identity provider could not be used (down, misconfigured, or its answer refused)."""

    def __init__(self, code: str, message: str):
        super().__init__(Kind.UNAVAILABLE, code, message)


@dataclass(frozen=True)
class AuthRequest:
    url: str  # where to send the browser
    state: str
    nonce: str
    verifier: str


class OidcClient:
    def __init__(self, issuer: str, client_id: str, client_secret: str | None, redirect_uri: str,
                 *, timeout: float = 10.0):
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self._config: tuple[float, dict] | None = None
        self._jwks: jwt.PyJWKClient | None = None

    def config(self) -> dict:
        """The provider's discovery document, cached for an hour."""
        if self._config and time.monotonic() - self._config[0] < 3600:
            return self._config[1]
        try:
            r = requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
            r.raise_for_status()
            config = r.json()
        except (requests.RequestException, ValueError) as exc:
            raise OidcError("oidc_unavailable", f"the identity provider did not answer: {exc}") from None
        if config.get("issuer", "").rstrip("/") != self.issuer:
            raise OidcError("oidc_misconfigured", f"the provider calls itself {config.get('issuer')!r}")
        self._config = (time.monotonic(), config)
        self._jwks = jwt.PyJWKClient(config["jwks_uri"], timeout=int(self.timeout))
        return config

    def start(self) -> AuthRequest:
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode({"response_type": "code", "client_id": self.client_id, "redirect_uri": self.redirect_uri,
                           "scope": "openid profile", "state": state, "nonce": nonce,
                           "code_challenge": challenge, "code_challenge_method": "S256"})
        return AuthRequest(f"{self.config()['authorization_endpoint']}?{query}", state, nonce, verifier)

    def _signing_key(self, id_token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(id_token).get("kid")
        if kid:
            return self._jwks.get_signing_key(kid)
        # A provider with one key may leave `kid` out; with several, the token must name its key.
        keys = self._jwks.get_signing_keys()
        if len(keys) != 1:
            raise jwt.InvalidTokenError("the ID token names no key and the provider has several")
        return keys[0]

    def finish(self, code: str, verifier: str, nonce: str) -> tuple[str, str]:
        """Exchange the code and check the ID token; returns (issuer, subject)."""
        config = self.config()
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": verifier, "client_id": self.client_id}
        auth = (self.client_id, self.client_secret) if self.client_secret else None
        try:
            r = requests.post(config["token_endpoint"], data=data, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise OidcError("oidc_unavailable", f"the identity provider did not answer: {exc}") from None
        if r.status_code != 200:
            raise OidcError("oidc_token_refused", f"the provider refused the code: {r.text[:200]}")
        id_token = r.json().get("id_token")
        if not id_token:
            raise OidcError("oidc_no_id_token", "the provider returned no ID token")
        try:
            key = self._signing_key(id_token)
            claims = jwt.decode(id_token, key.key, algorithms=["RS256", "ES256", "PS256", "EdDSA"],
                                audience=self.client_id, issuer=config["issuer"],
                                options={"require": ["iss", "sub", "aud", "exp", "iat"]}, leeway=30)
        except jwt.PyJWTError as exc:
            raise OidcError("oidc_token_invalid", f"the ID token does not verify: {exc}") from None
        if claims.get("nonce") != nonce:
            raise OidcError("oidc_nonce_mismatch", "the ID token was not issued for this sign-in")
        return self.issuer, str(claims["sub"])
