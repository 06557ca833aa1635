"""Passwords never appear in output, JSON or logs, whatever the form of the connection string (docs/design.md §4).

The server is 127.0.0.1 port 1: the connection is refused at once, so every
failure path (parse error, refused connection) runs in milliseconds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bundler.cli import _register, app
from bundler.db.conninfo import UNPARSEABLE, describe
from tests.cli_helpers import run_cli

_register()

STORY_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"
ASSETS = str(Path(__file__).parent / "fixtures" / "seed" / "media")
COMMANDS = (
    ["stories"],
    ["stories", "--json"],
    ["check", STORY_ID, "--json", "--assets-root", ASSETS],
    ["export", STORY_ID],
    ["db", "init", "--json"],
)


def _kv_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


FORMS: dict[str, Callable[[str], str]] = {
    "url-encoded": lambda pw: f"postgresql://alice:{quote(pw, safe='')}@127.0.0.1:1/db",
    "url-raw": lambda pw: f"postgresql://alice:{pw}@127.0.0.1:1/db",
    "postgres-scheme": lambda pw: f"postgres://alice:{quote(pw, safe='')}@127.0.0.1:1/db?sslmode=disable",
    "query-encoded": lambda pw: f"postgresql://alice@127.0.0.1:1/db?password={quote(pw, safe='')}",
    "query-raw": lambda pw: f"postgresql://alice@127.0.0.1:1/db?password={pw}",
    "key-value": lambda pw: f"host=127.0.0.1 port=1 user=alice password={_kv_quote(pw)} dbname=db",
    "key-value-raw": lambda pw: f"host=127.0.0.1 port=1 password={pw} user=alice dbname=db",
}


def _spellings(password: str) -> set[str]:
    return {password, quote(password), quote(password, safe=""), quote_plus(password), _kv_quote(password)}


def _clean_env() -> dict[str, str | None]:
    # CliRunner.invoke sets these for the call only; None removes a variable
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("PG")}
    env["DATABASE_URL"] = None
    return env


def _run(args: list[str], url: str, via_env: bool) -> tuple[int, str]:
    env = _clean_env()
    if via_env:
        env["DATABASE_URL"] = url
    else:
        args = [*args, "--database-url", url]
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, result.stdout + result.stderr


# distinct ends keep a password from matching ordinary output by chance ("a", "db", ...)
TOKENS = [" ", "%", "@", ":", "'", "/", "?", "=", "&", "\\", "%2", "%zz", "%41", "x", "1"]
passwords = st.lists(
    st.one_of(st.sampled_from(TOKENS), st.characters(exclude_categories=("Cs", "Cc"))), max_size=10
).map(lambda parts: "Q7" + "".join(parts) + "Z9")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    password=passwords,
    form=st.sampled_from(sorted(FORMS)),
    command=st.sampled_from(COMMANDS),
    via_env=st.booleans(),
)
def test_password_never_printed(
    password: str, form: str, command: list[str], via_env: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        code, output = _run(command, FORMS[form](password), via_env)
    assert code == 3, output
    assert "database" in output, output  # failed where it should: at the connection
    shown = output + caplog.text
    for spelling in _spellings(password):
        assert spelling not in shown, (form, output)


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://alice:S3 cr3t@127.0.0.1:1/db", "S3 cr3t"),
        ("postgresql://alice:S3cr3t%zzPW@127.0.0.1:1/db", "S3cr3t"),
        ("postgresql://alice@127.0.0.1:1/db?password=S3cr3tPW", "S3cr3tPW"),
        ("postgresql://u:PW@PW-tail@127.0.0.1:1/db", "PW-tail"),
        ("postgresql://u:PW/PW-tail@127.0.0.1:1/db", "PW-tail"),
        ("host=127.0.0.1 port=1 password='S3 cr3t' dbname=db", "S3 cr3t"),
    ],
)
def test_reported_cases_in_a_real_process(url: str, secret: str) -> None:
    for args in (["stories"], ["stories", "--json"], ["export", STORY_ID, "--json"]):
        result = run_cli(*args, "--database-url", url)
        assert result.returncode == 3, result.stderr
        assert secret not in result.stdout + result.stderr
        assert "database" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, no traceback


def test_display_is_rebuilt_without_the_password() -> None:
    assert describe("postgresql://alice:hunter2@db.example:6543/app?sslmode=require") == (
        "postgresql://alice@db.example:6543/app"
    )
    assert describe("host=h1,h2 port=1,2 user=u password='x y' dbname=d") == "postgresql://u@h1:1,h2:2/d"
    assert describe("postgresql://postgres:@/bundler?host=/tmp/pg") == "postgresql://postgres@/bundler?host=/tmp/pg"
    for unparseable in ("postgresql://u:PW@tail@host/db", "postgresql://u:a b@h/db", "not a conninfo"):
        assert describe(unparseable) == UNPARSEABLE


def test_unparseable_string_says_so() -> None:
    result = run_cli("stories", "--database-url", "postgresql://u:PW@PW-tail@127.0.0.1:1/db")
    assert UNPARSEABLE in result.stderr
    assert "percent-encode" in result.stderr
