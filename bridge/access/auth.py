"""Who is calling: the authentication modes chosen by ``--auth`` (``BRIDGE_AUTH``).

    none    every caller is anonymous and may do anything (a laptop, docker-compose)
    token   ``Authorization: Bearer <token>``, looked up in a token file (below)
    google  ``Authorization: Bearer <Google-signed ID token>`` (`bridge.access.idtoken`)

This module holds the authenticator interface and the first two modes; `bridge.access.idtoken`
builds on it, and the app factory picks the mode (`bridge.app`), so the dependencies
point one way.

Only the API's methods ask for credentials: the API view hands the Authorization header
to `Authenticator.identify` before it looks at anything else in the request. Discovery, the health endpoints and
any other route stay public unless they ask too (``/metrics`` should when
``BRIDGE_METRICS_AUTH`` is true). Which identity may do what to which queue is
`bridge.access.acl`'s business.

A token file holds one token a line, stored as its SHA-256 and followed by the identity
(an email, as queue.yaml ACLs name them); blank lines and ``#`` comments are ignored::

    # python -m bridge hash-token worker@example.com >> tokens.txt
    sha256:<the 64 hex digits of the token's SHA-256> worker@example.com

A fast hash is enough because hash-token makes long random tokens: a slow password hash
protects guessable secrets, and these are not guessable. Several tokens may name the same
identity (rotation: add the new one, move clients, remove the old one, restart or send
gunicorn a HUP).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from abc import ABC, abstractmethod
from pathlib import Path

from bridge.errors import InvalidCredentials, LoginRequired

#: Fewer characters than this make a token that a leaked token file gives away.
MIN_TOKEN_LENGTH = 16
_ALGORITHM = "sha256"
_LINE = re.compile(r"sha256:([0-9a-fA-F]{64})\s+(\S+)")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


class TokenFileError(ValueError):
    """The token file cannot be used; the message names the file and the line."""


class Authenticator(ABC):
    """Turns a request's headers into the caller's identity."""

    @abstractmethod
    def identify(self, authorization: str | None) -> str | None:
        """The email the Authorization header proves (None: anonymous, allowed everything).

        Raises Unauthenticated when it proves nothing.
        """


class Anonymous(Authenticator):
    """``--auth none``: nobody is asked anything."""

    def identify(self, authorization: str | None) -> str | None:
        return None


class BearerAuthenticator(Authenticator):
    """A mode whose credential is an ``Authorization: Bearer`` token."""

    def identify(self, authorization: str | None) -> str | None:
        return self.verify(bearer_token(authorization))

    @abstractmethod
    def verify(self, token: str) -> str:
        """The email ``token`` proves; InvalidCredentials when it proves nothing."""


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme's case does not matter)."""
    if header is None or not header.strip():
        raise LoginRequired()
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
        raise InvalidCredentials("the Authorization header must be 'Bearer <token>'", bearer_error="invalid_request")
    return token


def hash_token(token: str) -> str:
    """The form a token is stored in: ``sha256:<hex>``."""
    return f"{_ALGORITHM}:{hashlib.sha256(token.encode()).hexdigest()}"


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class TokenFile(BearerAuthenticator):
    """``--auth token``: bearer tokens whose hashes are listed in a file."""

    def __init__(self, entries: list[tuple[bytes, str]]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, path: Path) -> TokenFile:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{path}: cannot be read: {exc}") from None
        entries: list[tuple[bytes, str]] = []
        seen: set[bytes] = set()
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                raise TokenFileError(f"{path} line {number}: expected 'sha256:<64 hex digits> <email>'")
            digest, email = bytes.fromhex(match[1]), match[2]
            if not EMAIL.fullmatch(email):
                raise TokenFileError(f"{path} line {number}: {email!r} is not an email address")
            if digest in seen:
                raise TokenFileError(f"{path} line {number}: the same token is listed twice")
            seen.add(digest)
            entries.append((digest, email))
        if not entries:
            raise TokenFileError(f"{path}: lists no token, so nobody could call the API")
        return cls(entries)

    def verify(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        # Every entry is compared, in constant time each, so timing tells nothing of the file.
        for stored, email in self._entries:
            if hmac.compare_digest(stored, digest):
                found = email
        if found is None:
            raise InvalidCredentials("unknown token")
        return found
