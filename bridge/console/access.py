"""Who may use the console, and the CSRF token of its forms.

With ``--auth none`` the console is open, like every local emulator's. With ``--auth
token`` or ``google`` only the identities of ``--admins`` (``BRIDGE_ADMINS``) may use
it: the sign-in form takes the same bearer token the API takes, and keeps it in an
HttpOnly, SameSite=Strict cookie scoped to ``/console``; every request proves it again
through the bridge's authenticator, so a token removed from the token file (or an ID
token that expired) stops working at once. The JSON admin API also takes the token in
an ``Authorization: Bearer`` header (the queue CLI's ``--token``).

CSRF: every action is a POST carrying a token derived from the cookie (an HMAC of it),
which another site can neither read nor compute. With auth off the cookie is a random
value set on the first page. The JSON API refuses actions that are not JSON, which a
form on another site cannot send, unless they carry the bearer header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

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


class CsrfRefused(ApiError):
    status = 403
    reason = "forbidden"


class Access:
    def __init__(self, settings: Settings, authenticator: Authenticator) -> None:
        self.open = settings.auth == "none"
        self.admins = frozenset(email.casefold() for email in settings.admins)
        self.authenticator = authenticator

    def identify(self, req: Request, *, api: bool = False) -> str | None:
        """The admin making the request (None with auth off); raises when there is none.

        A page asks for the cookie; the JSON API also takes an Authorization header.
        """
        if self.open:
            return None
        header = req.headers.get("Authorization") if api else None
        if header is None:
            cookie = req.cookies.get(COOKIE)
            if not cookie:
                raise LoginRequired("Sign in to the console with an admin's token")
            header = f"Bearer {cookie}"
        return self.admit(header)

    def admit(self, authorization: str) -> str:
        identity = self.authenticator.identify(authorization)
        if identity is None or identity.casefold() not in self.admins:
            raise PermissionDenied(f"{identity} may not use the console: it is for the identities of --admins")
        return identity

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
        if not cookie or not sent or not hmac.compare_digest(sent, csrf_token(cookie)):
            raise CsrfRefused("The form is stale or came from another site; reload the page and try again")

    @staticmethod
    def ensure_cookie(req: Request, response: Response) -> None:
        """Give an open console's visitor the random cookie its forms' tokens derive from."""
        if not req.cookies.get(COOKIE):
            set_cookie(req, response, secrets.token_urlsafe(32))


def csrf_token(cookie: str) -> str:
    return hmac.new(cookie.encode(), b"console-csrf", hashlib.sha256).hexdigest()[:40]


def set_cookie(req: Request, response: Response, value: str) -> None:
    response.set_cookie(
        COOKIE, value, path=COOKIE_PATH, httponly=True, samesite="Strict", secure=req.is_secure, max_age=None
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict")
