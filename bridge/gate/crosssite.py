"""The cross-site policy: what a page on another origin could make a browser send is refused.

With ``--auth none`` (the local emulator's default) the bridge asks for no credentials,
so any page a developer opens could call it through the browser: a form, a ``no-cors``
fetch or a ``FormData`` POST needs no CORS preflight. Every HTTP request that may
change something (any method but GET, HEAD and OPTIONS) is therefore refused, 403
``forbidden`` in the surface's error format, when

1. the browser says it comes from another site: ``Sec-Fetch-Site`` is ``cross-site`` or
   ``same-site`` (only ``same-origin`` and ``none``, a URL typed or a bookmark, pass), or,
   from a browser that sends no ``Sec-Fetch-Site``, its ``Origin`` is not the bridge's own
   (the request's Host, or ``--public-url``; ``Origin: null`` is never the bridge's); or
2. its body is one a browser sends cross-site without asking (``text/plain``,
   ``application/x-www-form-urlencoded``, ``multipart/form-data``) where the surface takes
   JSON or no body. Exceptions: an empty body (some clients label a bodiless lease
   form-encoded), the console's own forms (they carry a CSRF token), and the
   ``X-HTTP-Method-Override: GET`` tunnel googleapiclient uses for long GETs (a header no
   page can add without a preflight).

Clients that are not browsers (googleapiclient, the Cloud Tasks clients, the queue CLI,
curl with ``-H 'Content-Type: application/json'``) send neither header and JSON bodies,
and pass. gRPC is not reachable from a page at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from backends.errors import PermissionDenied

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Methods that change nothing (RFC 9110's safe methods).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Content types a browser sends to another origin without a preflight (CORS's "simple" ones).
SIMPLE_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
#: Sec-Fetch-Site values of a request the bridge's own pages (or the user) made.
OWN_SITE = frozenset({"same-origin", "none"})
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


class CrossSiteRefused(PermissionDenied):
    """A request a page on another origin could have made a browser send."""


def _origin_host(origin: str) -> str | None:
    """``host[:port]`` of an Origin header, lower case and without a default port."""
    parts = urlsplit(origin)
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return None
    return parts.netloc.lower().removesuffix(_DEFAULT_PORTS[parts.scheme])


class CrossSite:
    """The policy as a check of a WSGI environ (see the module docstring).

    ``forms``: path prefixes whose POSTs are HTML forms (the console's pages), except
    those under a prefix of ``not_forms`` (the console's JSON API).
    """

    def __init__(self, public_url: str | None, forms: Iterable[str] = (), not_forms: Iterable[str] = ()) -> None:
        self.public_host = _origin_host(public_url) if public_url else None
        self.forms = tuple(forms)
        self.not_forms = tuple(not_forms)

    def __call__(self, environ: WSGIEnvironment) -> None:
        if environ["REQUEST_METHOD"] in SAFE_METHODS:
            return
        site = environ.get("HTTP_SEC_FETCH_SITE")
        if site is not None:
            if site.lower() not in OWN_SITE:
                raise CrossSiteRefused(
                    f"Refused: the browser says this request comes from another site (Sec-Fetch-Site: {site})",
                    location="Sec-Fetch-Site",
                )
        elif (origin := environ.get("HTTP_ORIGIN")) is not None and not self._own(origin, environ):
            raise CrossSiteRefused(f"Refused: a request from another origin ({origin[:100]})", location="Origin")
        kind = environ.get("CONTENT_TYPE")
        if kind and kind[:33].lower().startswith(SIMPLE_TYPES) and self._has_body(environ):
            self._check_body_kind(kind, environ)

    def _own(self, origin: str, environ: WSGIEnvironment) -> bool:
        host = _origin_host(origin)
        if host is None:
            return False
        # Behind a proxy that ends TLS the bridge sees http where the browser says https:
        # the host decides (the scheme's default port dropped), or --public-url's.
        own = environ.get("HTTP_HOST", "").lower().removesuffix(":80").removesuffix(":443")
        return host in (own, self.public_host)

    @staticmethod
    def _has_body(environ: WSGIEnvironment) -> bool:
        length = environ.get("CONTENT_LENGTH")
        if length:
            return str(length).strip() != "0"
        return bool(environ.get("wsgi.input_terminated") or environ.get("HTTP_TRANSFER_ENCODING"))

    def _check_body_kind(self, kind: str, environ: WSGIEnvironment) -> None:
        path = environ.get("PATH_INFO", "")
        if path.startswith(self.forms) and not path.startswith(self.not_forms):
            return
        tunnel = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper() == "GET"
        if tunnel and kind.lower().startswith("application/x-www-form-urlencoded"):
            return
        shown = kind.split(";")[0].strip()
        raise CrossSiteRefused(
            f"Refused: a {shown} body, which any web page can send; this takes JSON "
            "(Content-Type: application/json) or no body",
            location="Content-Type",
        )
