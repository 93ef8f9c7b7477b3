"""The head of every HTTP request: its Host header and its query string.

The Discovery document's rootUrl is made from the Host header, and every view reads
the query string as UTF-8 (werkzeug fails with a 500 on one that is not).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from backends.errors import InvalidArgument

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: A Host header: a name or IPv4 address, or an IPv6 address in brackets, and a port.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def check_head(environ: WSGIEnvironment) -> None:
    """A Host that is no host[:port] is a 400: the Discovery document's rootUrl is made
    from it. (A well-formed but foreign Host is the proxy's to refuse; see --public-url.)
    A query string that is not UTF-8 (raw bytes, not %-escapes) is a 400 too. A check of
    the gate's HTTP pipeline (`bridge.gate.http`), run on every request."""
    host = environ.get("HTTP_HOST")
    if host is not None and _HOST.fullmatch(host) is None:
        raise InvalidArgument("The Host header is not a valid host[:port]", location="Host")
    query = environ.get("QUERY_STRING")
    if query and not query.isascii():
        try:
            query.encode("latin-1").decode()
        except UnicodeError:
            raise InvalidArgument("The query string is not UTF-8 text", location="query") from None
