"""``--auth google``: Google-signed ID tokens, verified with google-auth.

A bearer token is accepted when it is a JWT signed with RS256 by one of the keys
published at ``--auth-certs-url`` (default: Google's), ``exp`` and ``iat`` hold (with
CLOCK_SKEW_SECONDS of slack), ``aud`` is ``--auth-audience``, ``iss`` is Google, and it
carries a verified ``email``: the identity queue ACLs name. Tokens made with
``gcloud auth print-identity-token --audiences=AUD --include-email``, or by a metadata
server asked for ``format=full``, carry one.

The keys are cached for the max-age the endpoint's Cache-Control gives (kept between
MIN_CACHE_SECONDS and MAX_CACHE_SECONDS), and fetched again early when a token names a
key id the cache lacks (Google rotates keys), at most once per REFETCH_SECONDS so that
tokens with made-up key ids cannot make the bridge hammer the endpoint. When a fetch
fails the cached keys go on serving; with no key at all the API answers 503. The
endpoint may answer in Google's ``{"key id": "PEM certificate"}`` form or as a JWK set.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import google.auth.exceptions
import google.auth.jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from backends.errors import Unavailable
from bridge.access.auth import BearerAuthenticator
from bridge.errors import InvalidCredentials

log = logging.getLogger("bridge")

#: Where Google publishes the keys that sign its ID tokens, as PEM certificates.
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
#: The ``iss`` claims Google's ID tokens carry.
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CLOCK_SKEW_SECONDS = 30
FETCH_TIMEOUT_SECONDS = 10
MIN_CACHE_SECONDS = 60
MAX_CACHE_SECONDS = 24 * 3600
#: The max-age assumed when the endpoint gives none.
DEFAULT_CACHE_SECONDS = 3600
REFETCH_SECONDS = 30

Certs = dict[str, str]
_MAX_AGE = re.compile(r"max-age=(\d+)")


def fetch_certs(url: str) -> tuple[Certs, int]:
    """The keys published at ``url`` as ``{key id: PEM}``, and how long they may be kept."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:
        document = json.loads(response.read())
        match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
    max_age = int(match[1]) if match else DEFAULT_CACHE_SECONDS
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer with a JSON object")
    if "keys" in document:
        certs = {key["kid"]: _pem_of_jwk(key) for key in document["keys"] if _is_rsa_signing_key(key)}
    else:
        certs = {kid: pem for kid, pem in document.items() if isinstance(kid, str) and isinstance(pem, str)}
    if not certs:
        raise ValueError(f"{url} lists no RSA signing key")
    return certs, max_age


def _is_rsa_signing_key(key: Any) -> bool:
    return isinstance(key, dict) and key.get("kty") == "RSA" and key.get("use", "sig") == "sig" and "kid" in key


def _pem_of_jwk(key: Mapping[str, str]) -> str:
    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public_key = RSAPublicNumbers(number(key["e"]), number(key["n"])).public_key()
    return public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


class CertificateCache:
    """The signing keys of one endpoint, fetched when needed; safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        fetch: Callable[[str], tuple[Certs, int]] = fetch_certs,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._certs: Certs = {}
        self._expires = 0.0
        self._last_try = float("-inf")

    def get(self, key_id: str | None) -> Certs:
        """The keys to check a token naming ``key_id`` against."""
        with self._lock:
            now = self._clock()
            unknown = key_id is not None and key_id not in self._certs
            due = now >= self._expires or unknown
            if due and now - self._last_try >= REFETCH_SECONDS:
                self._refresh(now)
            if not self._certs:
                raise Unavailable("Cannot fetch the keys that verify ID tokens; try again later")
            return self._certs

    def _refresh(self, now: float) -> None:
        self._last_try = now
        try:
            certs, max_age = self._fetch(self.url)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("cannot fetch ID token keys from %s: %s", self.url, exc)
            return
        self._certs = certs
        self._expires = now + min(max(max_age, MIN_CACHE_SECONDS), MAX_CACHE_SECONDS)


class GoogleIdTokens(BearerAuthenticator):
    """Verifies Google-signed ID tokens for one audience."""

    def __init__(self, audience: str, certs_url: str | None = None, *, certs: CertificateCache | None = None) -> None:
        self.audience = audience
        self.certs = certs or CertificateCache(certs_url or GOOGLE_CERTS_URL)

    def verify(self, token: str) -> str:
        try:
            header = google.auth.jwt.decode_header(token)  # type: ignore[no-untyped-call]  # untyped in google-auth
        except (ValueError, TypeError):
            raise InvalidCredentials("the bearer token is not a JWT") from None
        if not isinstance(header, dict) or header.get("alg") != "RS256":
            raise InvalidCredentials("an ID token must be signed with RS256")
        key_id = header.get("kid")
        certs = self.certs.get(key_id if isinstance(key_id, str) else None)
        try:
            # The audience is checked below, so that the refusal does not name the one expected.
            claims = google.auth.jwt.decode(  # type: ignore[no-untyped-call]  # untyped in google-auth
                token, certs=certs, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (ValueError, TypeError, google.auth.exceptions.GoogleAuthError) as exc:
            raise InvalidCredentials(f"the ID token does not verify ({_first_line(exc)})") from None
        if claims.get("aud") != self.audience:
            raise InvalidCredentials("the ID token is meant for another audience")
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise InvalidCredentials("the ID token was not issued by Google")
        email = claims.get("email")
        if not isinstance(email, str) or not email or claims.get("email_verified") is not True:
            raise InvalidCredentials("the ID token carries no verified email (ask for one with --include-email)")
        return email


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rstrip(".")
