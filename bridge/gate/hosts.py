"""The Host header of every HTTP request: the Discovery document's rootUrl is made from it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import request

from backends.errors import InvalidArgument

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: A Host header: a name or IPv4 address, or an IPv6 address in brackets, and a port.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")


def check_host(environ: WSGIEnvironment | None = None) -> None:
    """A Host that is no host[:port] is a 400: the Discovery document's rootUrl is made
    from it. (A well-formed but foreign Host is the proxy's to refuse; see --public-url.)
    A check of the gate's HTTP pipeline (`bridge.gate.http`), run on every request."""
    host = (request.environ if environ is None else environ).get("HTTP_HOST")
    if host is not None and _HOST.fullmatch(host) is None:
        raise InvalidArgument("The Host header is not a valid host[:port]", location="Host")
