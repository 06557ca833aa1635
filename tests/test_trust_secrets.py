"""No credential in output, and no garbled message either (DESIGN §4, issue 19 §2)."""

from __future__ import annotations

import pytest

from bundler.db.connect import DatabaseTarget, connect, scrub
from bundler.errors import DatabaseError
from tests.cli_helpers import json_of, run_cli

STORY_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"
NEVER_SHOWN = "zq9Xv7Lw2Kp4Rt8Y"  # a password no message can contain by chance


def _failure(conninfo: str) -> str:
    with pytest.raises(DatabaseError) as caught:
        connect(DatabaseTarget(conninfo, "--database-url"))
    return str(caught.value)


@pytest.mark.parametrize("password", ["a", "e", "ab", "at", "ai", "on", "1", "54", "432", "5432", "PGS", ".s"])
@pytest.mark.parametrize(
    "form",
    [
        "postgresql://alice:{pw}@127.0.0.1:9/db",
        "host=127.0.0.1 port=9 user=alice password={pw} dbname=db",
        "host=/nonexistent/socket port=5432 user=alice password={pw} dbname=db",
        "postgresql://alice@/db?host=/nonexistent/socket&port=5432&password={pw}",
    ],
)
def test_a_short_password_neither_garbles_the_message_nor_can_be_read_off_it(password: str, form: str) -> None:
    shown = _failure(form.format(pw=password))
    # the very message a password that cannot occur anywhere gets: nothing in it depends on the password
    assert shown == _failure(form.format(pw=NEVER_SHOWN))
    assert "***" not in shown


def test_a_short_password_standing_as_a_value_is_removed() -> None:
    # the port is the password: libpq quotes it back in its error
    shown = _failure("postgresql://u:ab@127.0.0.1:ab/db")
    assert '"ab"' not in shown and '"***"' in shown
    assert scrub('invalid integer value "5432" for option', "password=5432") == (
        'invalid integer value "***" for option'
    )
    assert scrub("socket /tmp/.s.PGSQL.5432 failed", "password=5432") == "socket /tmp/.s.PGSQL.5432 failed"
    assert scrub("connection to server at failed", "password=at") == "connection to server at failed"


def test_a_long_password_is_removed_wherever_it_appears() -> None:
    assert scrub("user u:Sup3rSecretPW@host x", "password=Sup3rSecretPW") == "user u:***@host x"
    assert scrub("tailSup3rSecretPWtail", "password=Sup3rSecretPW") == "tail***tail"


@pytest.mark.parametrize(
    "args",
    [
        ["check", STORY_ID, "--assets-root", "s3://media/root", "--json", "--database-url", "postgresql://u@h:9/d"],
        ["verify", "s3://media/out/x", "--json"],
        ["assemble", STORY_ID, "--out", "s3://media/out", "--json", "--database-url", "postgresql://u@h:9/d"],
    ],
    ids=["check", "verify", "assemble"],
)
@pytest.mark.parametrize("endpoint", ["http://endpoint-user:{pw}@127.0.0.1:9", "http://endpoint-user:{pw}@bad host:9"])
def test_credentials_in_the_endpoint_url_are_never_printed(args: list[str], endpoint: str) -> None:
    env = {
        "AWS_ENDPOINT_URL": endpoint.format(pw=NEVER_SHOWN),  # nothing listens on port 9: refused at once
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
    }
    result = run_cli(*args, env=env)
    assert result.returncode == 3, result.stderr
    shown = result.stdout + result.stderr
    assert NEVER_SHOWN not in shown and "endpoint-user" not in shown, shown
    assert "S3" in result.stderr or "AWS_ENDPOINT_URL" in result.stderr  # failed where it should
    json_of(result)  # one JSON document
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_endpoint_with_user_info_is_shown_without_it() -> None:
    from bundler.storage.s3.client import _redact, shown_endpoint

    assert shown_endpoint("http://u:p@w@127.0.0.1:9000/x") == "http://127.0.0.1:9000/x"
    assert shown_endpoint("https://store.example") == "https://store.example"
    assert "pw" not in _redact("error sending request for url (http://u:pw@h:1/b/k): refused")
