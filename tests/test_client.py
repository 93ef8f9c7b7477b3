"""bridge.client: what the compatibility checker and the smoke command use to send a token."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import google.oauth2.credentials
import pytest
from click.testing import CliRunner

from bridge.access.auth import hash_token
from bridge.client import BearerHttp, authorized_http, connect
from bridge_tools.options import TOKEN_ENV, token_option
from tests.support.api import PROJECT, ids, insert, lease
from tests.support.harness import Variant
from tests.support.http import BridgeServer, error_of

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

pytestmark = pytest.mark.memory

TOKEN = "client-token-0123456789abcdef"
EMAIL = "checker@example.com"


@pytest.fixture
def variant() -> Variant:
    return Variant("memory")


class _Recorder:
    """WSGI middleware that notes each request's path and Authorization header."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append((environ["PATH_INFO"], environ.get("HTTP_AUTHORIZATION")))
        return self.app(environ, start_response)


@pytest.fixture
def server(make_bridge: Callable[..., BridgeServer], tmp_path: Path) -> BridgeServer:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"{hash_token(TOKEN)} {EMAIL}\n")
    return make_bridge(auth="token", tokens_file=tokens)


def test_connect_sends_the_token_with_every_request_discovery_included(server: BridgeServer) -> None:
    recorder = _Recorder(server.app.wsgi_app)
    server.app.wsgi_app = recorder  # type: ignore[method-assign]
    api = connect(server.url, token=TOKEN)
    insert(api, id="t1")
    assert ids(lease(api)) == ["t1"]
    paths = [path for path, _ in recorder.seen]
    assert paths[0].startswith("/discovery/") and len(paths) == 3
    assert {header for _, header in recorder.seen} == {f"Bearer {TOKEN}"}


def test_without_a_token_the_client_is_refused_and_with_a_wrong_one_too(server: BridgeServer) -> None:
    error_of(connect(server.url).tasks().list(project=PROJECT, taskqueue="work"), 401, "required")
    error_of(
        connect(server.url, token="wrong-0123456789abcdef").tasks().list(project=PROJECT, taskqueue="w"),
        401,
        "authError",
    )


def test_google_auth_credentials_can_stand_in_for_a_token(server: BridgeServer) -> None:
    credentials = google.oauth2.credentials.Credentials(token=TOKEN)
    api = connect(server.url, credentials=credentials)
    assert insert(api, id="t1")["id"] == "t1"


def test_the_token_replaces_an_authorization_header_the_caller_set(server: BridgeServer) -> None:
    http = BearerHttp(TOKEN, timeout=10)
    response, _ = http.request(
        f"{server.url}/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/work/tasks",
        headers={"Authorization": "Bearer someone-else", "AUTHORIZATION": "Basic eA=="},
    )
    assert response.status == 200


@pytest.mark.parametrize(
    "options", [{"token": ""}, {"token": "two words"}, {"token": "t" * 20, "credentials": object()}]
)
def test_authorized_http_refuses_what_cannot_work(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        authorized_http(**options)


def test_token_option_reads_the_option_or_the_environment() -> None:
    @click.command()
    @token_option
    def command(token: str | None) -> None:
        click.echo(f"token={token}")

    runner = CliRunner()
    assert runner.invoke(command, []).output == "token=None\n"
    assert runner.invoke(command, [], env={TOKEN_ENV: "from-env"}).output == "token=from-env\n"
    assert runner.invoke(command, ["--token", "given"], env={TOKEN_ENV: "from-env"}).output == "token=given\n"
