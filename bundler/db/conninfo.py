"""Connection strings in messages: every one shown is rebuilt from its parsed parameters
without the password, and libpq's own text is echoed only when the string parsed
unambiguously (its parse errors quote the password) and after every form of the
password is removed from it."""

from __future__ import annotations

import os
import re
from urllib.parse import quote, quote_plus

UNPARSEABLE = "(unparseable connection string)"
_URL_PREFIXES = ("postgresql://", "postgres://")


def parse_conninfo(conninfo: str) -> dict[str, str] | None:
    """libpq's reading of a connection string, or None when it is invalid or ambiguous.

    Ambiguous: a URL whose password holds a raw ``@`` or ``/``, which libpq reads
    partly as host or database name (``postgresql://u:PW@tail@host/db``).
    """
    from psycopg.conninfo import conninfo_to_dict

    if conninfo.startswith(_URL_PREFIXES) and _ambiguous_url(conninfo):
        return None
    try:
        return {key: str(value) for key, value in conninfo_to_dict(conninfo).items() if value is not None}
    except Exception:
        return None


def _ambiguous_url(url: str) -> bool:
    head = url.split("://", 1)[1].split("?", 1)[0]  # user info, hosts and database: the query may hold '@'
    ats = head.count("@")
    return ats > 1 or (ats == 1 and "/" in head.split("@", 1)[0])


def describe(conninfo: str) -> str:
    """A connection string for messages: user, hosts, ports and database, never the password."""
    params = parse_conninfo(conninfo)
    if params is None:
        return UNPARSEABLE
    hosts = (params.get("host") or params.get("hostaddr") or "").split(",")
    ports = (params.get("port") or "").split(",")
    if len(ports) == 1:
        ports = ports * len(hosts)
    sockets = [host for host in hosts if host.startswith("/")]
    netloc = ",".join(
        f"{host}:{port}" if port else host for host, port in zip(hosts, ports, strict=False) if host not in sockets
    )
    user = params.get("user")
    text = f"postgresql://{quote(user, safe='') + '@' if user else ''}{netloc}/{quote(params.get('dbname', ''))}"
    if sockets:
        text += "?host=" + ",".join(sockets)
    return text


def redact(text: str) -> str:
    """Hide passwords in URLs (``user:secret@``) and key=value strings (``password=...``).

    A last line of defence for free text; connection strings are shown through ``describe``.
    """
    text = re.sub(r"(://[^:/@\s]*:)\S*@", r"\1***@", text)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", text, flags=re.I)


def scrub(message: str, conninfo: str) -> str:
    """A driver message on one line, with the password removed in every spelling it may take."""
    secrets = {os.environ.get("PGPASSWORD") or ""}
    password = (parse_conninfo(conninfo) or {}).get("password") if conninfo else None
    if password:
        secrets |= {password, quote(password, safe=""), quote(password), quote_plus(password)}
    for secret in sorted(secrets - {""}, key=len, reverse=True):
        message = _remove_secret(message, secret)
    return " ".join(redact(message).split())


# a long password never occurs in a message by chance: removed wherever it is. A short one
# ("a", "at", "5432") is removed only where libpq quotes a value back ("..."), the one place
# its text can hold it: prose stays intact ("failed", "server at", ".s.PGSQL.5432") and shows
# nothing about the password, not even where its letters are
_DISTINCTIVE = 8


def _remove_secret(message: str, secret: str) -> str:
    if len(secret) >= _DISTINCTIVE:
        return message.replace(secret, "***")
    return re.sub(rf"""(["']){re.escape(secret)}\1""", r"\1***\1", message)
