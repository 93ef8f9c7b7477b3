"""A stand-in for Google's token signing: RSA keys made here, published by a local HTTP server.

The server answers like Google's certificate endpoints: ``/certs`` with
``{"key id": "PEM certificate"}`` and ``/jwks`` with a JWK set, both with a
Cache-Control max-age; it counts the fetches, so tests can see the bridge's cache.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import google.auth.crypt
import google.auth.jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

AUDIENCE = "https://tasks.staging.example.com"
ISSUER = "https://accounts.google.com"


class SigningKey:
    """One RSA key pair and the key id tokens name it by."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def sign(self, claims: dict[str, Any], *, key_id: str | None = None) -> str:
        signer = google.auth.crypt.RSASigner(self.private, key_id=key_id or self.key_id)
        token: bytes = google.auth.jwt.encode(signer, claims)
        return token.decode()

    def certificate(self) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.key_id)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.private, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()

        def b64(value: int) -> str:
            return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.key_id,
            "n": b64(numbers.n),
            "e": b64(numbers.e),
        }


def claims(
    email: str = "worker@example.com",
    *,
    audience: str = AUDIENCE,
    issuer: str = ISSUER,
    expires_in: int = 3600,
    **extra: Any,
) -> dict[str, Any]:
    """The claims of a Google ID token for ``email``, valid for ``expires_in`` seconds from now."""
    now = int(time.time())
    issued = min(now, now + expires_in - 3600)
    return {
        "iss": issuer,
        "aud": audience,
        "sub": "104223309826152360117",
        "email": email,
        "email_verified": True,
        "iat": issued,
        "exp": now + expires_in,
        **extra,
    }


class KeyServer:
    """Publishes ``keys`` at ``url + "/certs"`` (PEM certificates) and ``url + "/jwks"``."""

    def __init__(self, *keys: SigningKey, max_age: int = 3600) -> None:
        self.keys = list(keys)
        self.max_age = max_age
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.fetches += 1
                if self.path == "/certs":
                    document: Any = {key.key_id: key.certificate() for key in server.keys}
                elif self.path == "/jwks":
                    document = {"keys": [key.jwk() for key in server.keys]}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={server.max_age}, must-revalidate")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
