"""Who may use the console: its signed session, and the CSRF token of its forms.

With ``--auth none`` the console is open, like every local emulator's. With ``--auth
token`` or ``google`` only the identities of ``--admins`` (``BRIDGE_ADMINS``) may use
it: the sign-in form takes the same bearer token the API takes, proves it once through
the bridge's authenticator, and sets a **session**: the identity and an expiry
(`SESSION_SECONDS`), signed with HMAC-SHA256, in an HttpOnly, SameSite=Strict cookie
scoped to ``/console``, ``Secure`` whenever the request came over https or
``--public-url`` is https (behind a load balancer that ends TLS). The cookie never holds
the token. Every request checks the signature and the expiry, and that the identity is
still one of ``--admins``. The JSON admin API also takes the token itself in an
``Authorization: Bearer`` header (the queue CLI's ``--token``).

The signing key: HMAC-SHA256 of a random secret drawn when this module is first
imported, which a gunicorn master does before it forks its workers (``bridge``'s
package imports the app factory, and so this module), so every worker of one server
accepts the others' sessions; and of what the sessions stand on (the auth mode, the
token file's contents, the ID tokens' audience), so that a changed token file (a HUP
reload) or a restart ends every session: sign in again.

CSRF: every action is a POST carrying a token derived from the cookie (an HMAC of it
with the same key), which another site can neither read nor compute. With auth off the
cookie is a random value set on the first page. The JSON API refuses actions that are
not JSON, which a form on another site cannot send, unless they carry the bearer
header; the gate refuses what another origin sends anyway (`bridge.gate.crosssite`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from flask import Request
from werkzeug.wrappers import Response

from backends.errors import ApiError, PermissionDenied
from bridge.access.auth import Authenticator
from bridge.errors import LoginRequired
from bridge.settings import Settings

COOKIE = "bridge_console"
COOKIE_PATH = "/console"
#: The form field (pages) and header (JSON API) that carry the CSRF token.
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: How long a session lasts: a working day; then sign in again.
SESSION_SECONDS = 8 * 3600
#: Drawn in the process that first imports the bridge (a gunicorn master, before it forks).
_PROCESS_SECRET = secrets.token_bytes(32)


class CsrfRefused(ApiError):
    status = 403
    reason = "forbidden"


def session_key(settings: Settings) -> bytes:
    """The key sessions are signed with: the process secret, and what sessions stand on."""
    material = [settings.auth.encode(), (settings.auth_audience or "").encode()]
    if settings.tokens_file is not None:
        try:
            material.append(hashlib.sha256(settings.tokens_file.read_bytes()).digest())
        except OSError:
            material.append(b"unreadable")
    return hmac.new(_PROCESS_SECRET, b"\0".join(material), hashlib.sha256).digest()


class Access:
    def __init__(self, settings: Settings, authenticator: Authenticator) -> None:
        self.open = settings.auth == "none"
        self.admins = frozenset(email.casefold() for email in settings.admins)
        self.authenticator = authenticator
        self.key = session_key(settings)
        self.https = (settings.public_url or "").lower().startswith("https://")

    def identify(self, req: Request, *, api: bool = False) -> str | None:
        """The admin making the request (None with auth off); raises when there is none.

        A page asks for the session cookie; the JSON API also takes an Authorization header.
        """
        if self.open:
            return None
        header = req.headers.get("Authorization") if api else None
        if header is not None:
            return self.admit(header)
        cookie = req.cookies.get(COOKIE)
        if not cookie:
            raise LoginRequired("Sign in to the console with an admin's token")
        identity = self.session_identity(cookie)
        if identity is None:
            raise LoginRequired("The console session has expired or is not this server's; sign in again")
        return self.admitted(identity)

    def admit(self, authorization: str) -> str:
        """The identity a bearer credential proves, if it is an admin's."""
        return self.admitted(self.authenticator.identify(authorization) or "anonymous")

    def admitted(self, identity: str) -> str:
        if identity.casefold() not in self.admins:
            raise PermissionDenied(f"{identity} may not use the console: it is for the identities of --admins")
        return identity

    def session(self, identity: str, now: float | None = None) -> str:
        """A signed session cookie value for ``identity``, good for `SESSION_SECONDS`."""
        expires = int(now if now is not None else time.time()) + SESSION_SECONDS
        body = base64.urlsafe_b64encode(f"{expires}\n{identity}".encode()).decode().rstrip("=")
        return f"{body}.{self._sign(body)}"

    def session_identity(self, cookie: str, now: float | None = None) -> str | None:
        """The identity a session cookie carries, if its signature is ours and it has not expired."""
        body, _, signature = cookie.partition(".")
        if not signature or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            expires, _, identity = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode().partition("\n")
            alive = int(expires) > (now if now is not None else time.time())
        except (ValueError, UnicodeDecodeError):
            return None
        return identity if alive and identity else None

    def _sign(self, body: str) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")

    def check_action(self, req: Request, *, api: bool = False) -> None:
        """Refuse a POST that another site could have sent."""
        if api and "Authorization" in req.headers:
            return  # a bearer header is not ambient: a foreign page cannot add it
        if api and not req.is_json:
            raise CsrfRefused("Console actions take a JSON body (Content-Type: application/json)")
        sent = req.headers.get(CSRF_HEADER) if api else req.form.get(CSRF_FIELD)
        cookie = req.cookies.get(COOKIE)
        if api and self.open and sent is None:
            return  # open and JSON-only: a cross-site form cannot send it
        if not cookie or not sent or not hmac.compare_digest(sent, self.csrf_token(cookie)):
            raise CsrfRefused("The form is stale or came from another site; reload the page and try again")

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.key, b"console-csrf\0" + cookie.encode(), hashlib.sha256).hexdigest()[:40]

    def set_cookie(self, req: Request, response: Response, value: str) -> None:
        secure = req.is_secure or self.https
        max_age = None if self.open else SESSION_SECONDS
        response.set_cookie(
            COOKIE, value, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=secure, max_age=max_age
        )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
