"""--auth google: ID tokens signed with keys made here, published by a local key server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.access.idtoken import MIN_CACHE_SECONDS, REFETCH_SECONDS, CertificateCache, GoogleIdTokens, fetch_certs
from bridge.errors import InvalidCredentials
from tests.support.api import PROJECT, ids, insert, lease, listed
from tests.support.harness import Variant
from tests.support.http import BridgeServer, error_of
from tests.support.idtokens import AUDIENCE, KeyServer, SigningKey, claims
from tests.support.redis_server import free_port

pytestmark = pytest.mark.memory


@pytest.fixture
def variant() -> Variant:
    """Credentials are checked before the backend is reached: one backend is enough here."""
    return Variant("memory")


PRODUCER = "frontend@example.com"
CONSUMER = "worker@example.com"
QUEUE_YAML = f"""\
queue:
- name: render
  mode: pull
  acl:
  - user_email: {CONSUMER}
  - writer_email: {PRODUCER}
"""


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey("key-1")


@pytest.fixture(scope="module")
def rogue_key() -> SigningKey:
    """A key nobody published, under the published key's id."""
    return SigningKey("key-1")


@pytest.fixture
def keys(google_key: SigningKey) -> Iterator[KeyServer]:
    server = KeyServer(google_key)
    yield server
    server.close()


@pytest.fixture
def start(make_bridge: Callable[..., BridgeServer], keys: KeyServer, tmp_path: Path) -> Callable[..., BridgeServer]:
    queues = tmp_path / "queue.yaml"
    queues.write_text(QUEUE_YAML)

    def start(path: str = "/certs", **settings: Any) -> BridgeServer:
        options = {"auth": "google", "auth_audience": AUDIENCE, "auth_certs_url": keys.url + path, "queues": queues}
        return make_bridge(**{**options, **settings})

    return start


@pytest.fixture
def server(start: Callable[..., BridgeServer]) -> BridgeServer:
    return start()


def test_a_valid_id_token_names_the_caller_for_the_acl(server: BridgeServer, google_key: SigningKey) -> None:
    producer = server.api(google_key.sign(claims(PRODUCER)))
    consumer = server.api(google_key.sign(claims(CONSUMER)))
    insert(producer, queue="render", id="t1")
    assert ids(lease(consumer, queue="render")) == ["t1"]
    error_of(producer.tasks().list(project=PROJECT, taskqueue="render"), 403, "forbidden")
    error_of(consumer.tasks().insert(project=PROJECT, taskqueue="render", body={}), 403, "forbidden")


def test_a_jwk_set_serves_as_well_as_pem_certificates(
    start: Callable[..., BridgeServer], google_key: SigningKey
) -> None:
    server = start("/jwks")
    insert(server.api(google_key.sign(claims(PRODUCER))), queue="render", id="t1")
    assert ids(listed(server.api(google_key.sign(claims(CONSUMER))), queue="render")) == ["t1"]


def _unsigned(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': 'key-1'})}.{part(payload)}."


def _tampered(token: str, **changes: Any) -> str:
    """``token`` with its claims changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    payload = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def _bad_tokens(google_key: SigningKey, rogue_key: SigningKey) -> dict[str, str]:
    valid = google_key.sign(claims(PRODUCER))
    return {
        "expired": google_key.sign(claims(PRODUCER, expires_in=-600)),
        "wrongly signed": rogue_key.sign(claims(PRODUCER)),
        "unknown key id": google_key.sign(claims(PRODUCER), key_id="key-9"),
        "wrong audience": google_key.sign(claims(PRODUCER, audience="https://elsewhere.example.com")),
        "wrong issuer": google_key.sign(claims(PRODUCER, issuer="https://evil.example.com")),
        "unverified email": google_key.sign(claims(PRODUCER, email_verified=False)),
        "no email": google_key.sign({k: v for k, v in claims(PRODUCER).items() if k != "email"}),
        "issued in the future": google_key.sign(claims(PRODUCER, iat=claims()["iat"] + 3600)),
        "unsigned": _unsigned(claims(PRODUCER)),
        "tampered": _tampered(valid, email=CONSUMER),
        "not a jwt": "this-is-not-a-jwt",
        "a token of token mode": "token-of-frontend-0123456789abcdef",
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrongly signed",
        "unknown key id",
        "wrong audience",
        "wrong issuer",
        "unverified email",
        "no email",
        "issued in the future",
        "unsigned",
        "tampered",
        "not a jwt",
        "a token of token mode",
    ],
)
def test_a_bad_id_token_is_401_auth_error_and_changes_nothing(
    server: BridgeServer, google_key: SigningKey, rogue_key: SigningKey, case: str
) -> None:
    consumer = server.api(google_key.sign(claims(CONSUMER)))
    insert(server.api(google_key.sign(claims(PRODUCER))), queue="render", id="t1")
    before = listed(consumer, queue="render")
    token = _bad_tokens(google_key, rogue_key)[case]
    api = server.api(token)
    envelope = error_of(api.tasks().insert(project=PROJECT, taskqueue="render", body={"id": "t2"}), 401, "authError")
    assert envelope["error"]["message"].startswith("Invalid Credentials: ")
    # The refusal does not tell a caller which audience would have done.
    assert AUDIENCE not in envelope["error"]["message"]
    reply = server.request(
        "DELETE",
        f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/render/tasks/t1",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="taskqueue", error="invalid_token"'
    assert listed(consumer, queue="render") == before


def test_no_token_is_401_required(server: BridgeServer) -> None:
    error_of(server.api().tasks().list(project=PROJECT, taskqueue="render"), 401, "required")


def test_the_keys_are_fetched_once_and_then_served_from_the_cache(
    server: BridgeServer, keys: KeyServer, google_key: SigningKey
) -> None:
    api = server.api(google_key.sign(claims(CONSUMER)))
    for _ in range(5):
        listed(api, queue="render")
    # A made-up key id right after a fetch does not make the bridge fetch again.
    error_of(
        server.api(google_key.sign(claims(CONSUMER), key_id="made-up"))
        .tasks()
        .list(project=PROJECT, taskqueue="render"),
        401,
        "authError",
    )
    assert keys.fetches == 1


def test_without_reachable_keys_the_api_answers_503_and_discovery_still_works(
    start: Callable[..., BridgeServer], google_key: SigningKey
) -> None:
    server = start(auth_certs_url=f"http://127.0.0.1:{free_port()}/certs")
    reply = server.request(
        "GET",
        f"/taskqueue/v1beta2/projects/{PROJECT}/taskqueues/render/tasks",
        headers={"Authorization": f"Bearer {google_key.sign(claims(CONSUMER))}"},
    )
    assert reply.status == 503
    assert reply.json["error"]["errors"][0]["reason"] == "backendError"
    assert server.request("GET", "/api/taskqueue/v1beta2").status == 200


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Endpoint:
    """What a key endpoint answers next; counts calls, fails when told to."""

    def __init__(self, keys: KeyServer) -> None:
        self.keys = keys
        self.calls = 0
        self.failing = False

    def __call__(self, url: str) -> tuple[dict[str, str], int]:
        self.calls += 1
        if self.failing:
            raise OSError("connection refused")
        return fetch_certs(url)


def test_the_cache_keeps_keys_for_their_max_age_and_then_fetches_again(keys: KeyServer) -> None:
    clock, endpoint = _Clock(), _Endpoint(keys)
    keys.max_age = 600
    cache = CertificateCache(keys.url + "/certs", fetch=endpoint, clock=clock)
    assert set(cache.get("key-1")) == {"key-1"}
    clock.now += 599
    cache.get("key-1")
    assert endpoint.calls == 1
    clock.now += 2
    cache.get("key-1")
    assert endpoint.calls == 2


def test_the_cache_keeps_tiny_max_ages_to_a_floor(keys: KeyServer) -> None:
    clock, endpoint = _Clock(), _Endpoint(keys)
    keys.max_age = 0
    cache = CertificateCache(keys.url + "/certs", fetch=endpoint, clock=clock)
    cache.get("key-1")
    clock.now += MIN_CACHE_SECONDS - 1
    cache.get("key-1")
    assert endpoint.calls == 1


def test_a_new_key_id_is_fetched_at_most_once_per_interval(keys: KeyServer) -> None:
    clock, endpoint = _Clock(), _Endpoint(keys)
    cache = CertificateCache(keys.url + "/certs", fetch=endpoint, clock=clock)
    cache.get("key-1")
    rotated = SigningKey("key-2")
    keys.keys.append(rotated)
    assert "key-2" not in cache.get("key-2")  # too soon after the last fetch
    clock.now += REFETCH_SECONDS
    assert "key-2" in cache.get("key-2")
    assert endpoint.calls == 2
    verifier = GoogleIdTokens(AUDIENCE, certs=cache)
    assert verifier.verify(rotated.sign(claims(CONSUMER))) == CONSUMER


def test_when_a_fetch_fails_the_cached_keys_go_on_serving(keys: KeyServer, google_key: SigningKey) -> None:
    clock, endpoint = _Clock(), _Endpoint(keys)
    cache = CertificateCache(keys.url + "/certs", fetch=endpoint, clock=clock)
    verifier = GoogleIdTokens(AUDIENCE, certs=cache)
    token = google_key.sign(claims(CONSUMER))
    assert verifier.verify(token) == CONSUMER
    endpoint.failing = True
    clock.now += 2 * 24 * 3600
    assert verifier.verify(token) == CONSUMER
    assert endpoint.calls == 2
    with pytest.raises(InvalidCredentials):
        verifier.verify(google_key.sign(claims(CONSUMER), key_id="key-7"))
