"""The Google API client for a bridge, for workers and for the tools that call one.

`connect` builds Google's own client from the Discovery document a bridge serves,
with a bearer token when the bridge asks for one::

    api = connect("https://tasks.staging.example.com", token=token)
    api.tasks().lease(project="s~app", taskqueue="render", numTasks=1, leaseSecs=60).execute()

Code that builds the client itself hands `authorized_http(token)` to
``googleapiclient.discovery.build(..., http=...)``: every request it sends, the
Discovery fetch included, then carries ``Authorization: Bearer <token>``. For
``--auth google`` the token is an ID token, e.g. from
``gcloud auth print-identity-token --audiences=AUD --include-email``; a program can
pass google-auth ``credentials`` instead (``google.oauth2.id_token.fetch_id_token_credentials``),
which refresh themselves.
"""

from __future__ import annotations

from typing import Any

import httplib2

DEFAULT_TIMEOUT_SECONDS = 60


class BearerHttp(httplib2.Http):  # type: ignore[misc]  # httplib2 has no type information
    """An ``httplib2.Http`` that sends ``Authorization: Bearer <token>`` with every request."""

    def __init__(self, token: str, **options: Any) -> None:
        super().__init__(**options)
        self._authorization = f"Bearer {token}"
        # The token is for the bridge: a redirect must not carry it to another host.
        self.follow_redirects = False

    def request(
        self,
        uri: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
        redirections: int = httplib2.DEFAULT_MAX_REDIRECTS,
        connection_type: Any = None,
    ) -> Any:
        headers = {name: value for name, value in (headers or {}).items() if name.lower() != "authorization"}
        headers["authorization"] = self._authorization
        return super().request(uri, method, body, headers, redirections, connection_type)


def authorized_http(
    token: str | None = None, *, credentials: Any = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> httplib2.Http:
    """The ``http`` object for ``build()``: with ``token``, or google-auth ``credentials``, or neither."""
    if token is not None and credentials is not None:
        raise ValueError("give a token or credentials, not both")
    if token is not None:
        if not token or any(c.isspace() for c in token):
            raise ValueError("a bearer token cannot be empty or contain spaces")
        return BearerHttp(token, timeout=timeout)
    if credentials is not None:
        import google_auth_httplib2

        return google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    return httplib2.Http(timeout=timeout)


def discovery_url(url: str) -> str:
    """The Discovery URL template of the bridge at ``url`` (its root, e.g. ``http://127.0.0.1:8080``)."""
    return url.rstrip("/") + "/discovery/v1/apis/{api}/{apiVersion}/rest"


def connect(
    url: str, *, token: str | None = None, credentials: Any = None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> Any:
    """The Google API client for the bridge at ``url``, built from the Discovery document it serves."""
    from googleapiclient.discovery import build

    return build(
        "taskqueue",
        "v1beta2",
        discoveryServiceUrl=discovery_url(url),
        http=authorized_http(token, credentials=credentials, timeout=timeout),
        static_discovery=False,
        cache_discovery=False,
    )
