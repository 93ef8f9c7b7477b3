"""Authentication settings, the token file and `hash-token`: mistakes stop at start-up with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.access.auth import TokenFile, TokenFileError, hash_token
from bridge.cli import main
from bridge.errors import InvalidCredentials
from bridge.settings import Settings, SettingsError


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.txt"
    path.write_text(f"{hash_token('a-token-0123456789abcdef')} worker@example.com\n")
    return path


BAD_SETTINGS = [
    ({"auth": "tokens"}, "--auth (BRIDGE_AUTH): 'tokens' is not one of none, token, google"),
    ({"auth": "token"}, "--auth token needs --tokens-file (BRIDGE_TOKENS_FILE)"),
    ({"auth": "token", "tokens_file": Path("/nonexistent/tokens.txt")}, "/nonexistent/tokens.txt is not a file"),
    ({"auth": "google"}, "--auth google needs --auth-audience (BRIDGE_AUTH_AUDIENCE)"),
    ({"auth_audience": "x"}, "--auth-audience (BRIDGE_AUTH_AUDIENCE) is only used with --auth google"),
    ({"auth_certs_url": "http://x/certs"}, "--auth-certs-url (BRIDGE_AUTH_CERTS_URL) is only used with --auth google"),
    ({"auth": "google", "auth_audience": "a", "auth_certs_url": "file:///etc/certs"}, "must be an http(s) URL"),
    ({"acl_default": "closed"}, "--acl-default (BRIDGE_ACL_DEFAULT) needs --auth token or google"),
    ({"acl_default": "shut"}, "'shut' is not one of open, closed"),
    ({"admins": ("ops@example.com",)}, "--admins (BRIDGE_ADMINS) needs --auth token or google"),
    ({"metrics_auth": True}, "--metrics-auth (BRIDGE_METRICS_AUTH) needs --auth token or google"),
]


@pytest.mark.parametrize("options, message", BAD_SETTINGS, ids=[m[:40] for _, m in BAD_SETTINGS])
def test_incomplete_or_contradictory_auth_settings_fail_with_a_fix(options: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings(**options)
    assert message in str(caught.value)


def test_a_tokens_file_given_without_token_mode_is_refused(tokens: Path) -> None:
    with pytest.raises(SettingsError, match="only used with --auth token, but --auth is none"):
        Settings(tokens_file=tokens)


def test_auth_settings_come_from_the_environment(tokens: Path) -> None:
    settings = Settings.from_env(
        {
            "BRIDGE_AUTH": "token",
            "BRIDGE_TOKENS_FILE": str(tokens),
            "BRIDGE_ACL_DEFAULT": "closed",
            "BRIDGE_ADMINS": "ops@example.com, oncall@example.com,",
            "BRIDGE_METRICS_AUTH": "yes",
        }
    )
    assert (settings.auth, settings.tokens_file, settings.acl_default) == ("token", tokens, "closed")
    assert settings.admins == ("ops@example.com", "oncall@example.com")
    assert settings.metrics_auth is True
    google = Settings.from_env({"BRIDGE_AUTH": "google", "BRIDGE_AUTH_AUDIENCE": "https://tasks.example.com"})
    assert google.auth_audience == "https://tasks.example.com" and google.auth_certs_url is None
    assert Settings.from_env({}).auth == "none"


def test_a_flag_that_is_not_true_or_false_is_refused() -> None:
    with pytest.raises(SettingsError, match="'maybe' is not true or false"):
        Settings.from_env({"BRIDGE_AUTH": "google", "BRIDGE_AUTH_AUDIENCE": "a", "BRIDGE_METRICS_AUTH": "maybe"})


BAD_FILES = [
    ("", "lists no token"),
    ("# only a comment\n", "lists no token"),
    ("a-plain-token worker@example.com\n", "line 1: expected 'sha256:<64 hex digits> <email>'"),
    (f"\n{hash_token('x' * 20)}\n", "line 2: expected"),
    (f"{hash_token('x' * 20)} worker\n", "line 1: 'worker' is not an email address"),
    (f"{hash_token('x' * 20)} a@example.com\n{hash_token('x' * 20)} b@example.com\n", "line 2: the same token"),
    (f"{hash_token('x' * 20)} a@example.com b@example.com\n", "line 1: expected"),
]


@pytest.mark.parametrize("text, message", BAD_FILES, ids=[m[:30] for _, m in BAD_FILES])
def test_a_bad_token_file_names_the_line_at_fault(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text(text)
    with pytest.raises(TokenFileError) as caught:
        TokenFile.load(path)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_several_tokens_may_name_one_identity_and_comments_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    lines = ["# rotation in progress", f"{hash_token('old-token-0123456789')} w@example.com", ""]
    lines += [f"  {hash_token('new-token-0123456789').upper().replace('SHA256', 'sha256')}\tw@example.com  "]
    path.write_text("\n".join(lines))
    tokens = TokenFile.load(path)
    assert tokens.verify("old-token-0123456789") == tokens.verify("new-token-0123456789") == "w@example.com"
    with pytest.raises(InvalidCredentials):
        tokens.verify("other-token-0123456789")


def test_serve_stops_with_one_line_on_a_bad_token_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.txt"
    path.write_text("not a token line\n")
    result = CliRunner().invoke(main, ["serve", "--auth", "token", "--tokens-file", str(path)])
    assert result.exit_code == 1
    assert f"Error: {path} line 1: expected" in result.output


def test_serve_stops_with_one_line_on_a_missing_audience() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"BRIDGE_AUTH": "google"})
    assert result.exit_code == 1
    assert "--auth google needs --auth-audience (BRIDGE_AUTH_AUDIENCE)" in result.output


def test_hash_token_makes_a_token_and_the_line_that_accepts_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["hash-token", "worker@example.com"])
    assert result.exit_code == 0, result.output
    token = result.stderr.strip().rsplit(" ", 1)[1]
    assert len(token) >= 40 and token not in result.stdout
    path = tmp_path / "tokens.txt"
    path.write_text(result.stdout)
    assert TokenFile.load(path).verify(token) == "worker@example.com"
    again = CliRunner().invoke(main, ["hash-token", "worker@example.com"])
    assert again.stdout != result.stdout


def test_hash_token_hashes_a_given_token_from_standard_input() -> None:
    result = CliRunner().invoke(
        main, ["hash-token", "--token-stdin", "w@example.com"], input="given-token-0123456789\n"
    )
    assert result.exit_code == 0
    assert result.stdout == f"{hash_token('given-token-0123456789')} w@example.com\n"
    assert result.stderr == ""


@pytest.mark.parametrize(
    "args, given, message",
    [
        (["hash-token", "--token-stdin", "w@example.com"], "short\n", "at least 16 characters"),
        (["hash-token", "--token-stdin", "w@example.com"], "two words but long enough\n", "no spaces"),
        (["hash-token", "not-an-email"], "", "'not-an-email' is not an email address"),
    ],
)
def test_hash_token_refuses_weak_tokens_and_non_emails(args: list[str], given: str, message: str) -> None:
    result = CliRunner().invoke(main, args, input=given)
    assert result.exit_code == 1
    assert message in result.output
