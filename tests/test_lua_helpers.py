"""The scripts as loaded: each carries the helpers of common.lua that it uses and no other,
in common.lua's order, and Redis compiles every one (the contract suite runs them)."""

from __future__ import annotations

import importlib.resources

import pytest
import redis

from backends.redis.backend import SOURCES
from backends.redis.lua_helpers import Definition, assemble, definitions, names_in
from tests.support.redis_server import RedisServer

COMMON = (importlib.resources.files("backends.redis") / "lua" / "common.lua").read_text()
HELPERS = definitions(COMMON)


def included(source: str) -> list[Definition]:
    return [helper for helper in HELPERS if helper.text in source]


def test_common_lua_is_read_as_its_definitions_in_order() -> None:
    names = [helper.name for helper in HELPERS]
    assert names[:3] == ["tasks_key", "index_key", "heads_key"]
    assert {"int", "now_us", "reset_head", "leased_recently"} <= set(names)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_loaded_script_defines_every_helper_it_uses_and_no_other(name: str) -> None:
    source = SOURCES[name]
    for helper in HELPERS:
        defined = helper.text in source
        used_elsewhere = helper.name in names_in(source.replace(helper.text, ""))
        assert defined == used_elsewhere, f"{name}.lua: {helper.name} defined {defined}, used {used_elsewhere}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_loaded_script_keeps_common_luas_order_and_ends_with_the_script(name: str) -> None:
    source = SOURCES[name]
    positions = [source.index(helper.text) for helper in included(source)]
    assert positions == sorted(positions)
    script = (importlib.resources.files("backends.redis") / "lua" / f"{name}.lua").read_text()
    assert source.endswith(script)


def test_names_in_comments_and_strings_do_not_count_as_uses() -> None:
    common = "local function int(n)\n  return n\nend\n\nlocal function now_us()\n  return 1\nend\n"
    assert assemble(common, "-- int() is not called here\nreturn 'now_us'\n") == (
        "-- int() is not called here\nreturn 'now_us'\n"
    )
    assert assemble(common, "return int(2)\n").startswith("local function int(n)")


def test_a_helper_brings_the_helpers_it_uses() -> None:
    common = (
        "local a_key = KEYS[1]\n\n"
        "-- Why b.\nlocal function b()\n  return a_key\nend\n\n"
        "local function c()\n  return 1\nend\n"
    )
    assert assemble(common, "return b()\n") == (
        "local a_key = KEYS[1]\n\n-- Why b.\nlocal function b()\n  return a_key\nend\n\nreturn b()\n"
    )


def test_common_lua_may_hold_nothing_but_definitions() -> None:
    with pytest.raises(ValueError, match="not a definition"):
        definitions("local a = 1\nredis.call('PING')\n")
    with pytest.raises(ValueError, match="no `end`"):
        definitions("local function f()\n  return 1\n")


@pytest.mark.redis
def test_redis_compiles_every_loaded_script(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        for name, source in SOURCES.items():
            assert client.script_load(source), name
    finally:
        client.close()
