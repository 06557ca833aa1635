"""The few S3 requests bundler makes, through ``obstore`` (optional extra ``story-bundler[s3]``).

Configuration comes only from the standard AWS variables (docs/design.md §4):
``AWS_ENDPOINT_URL`` (``http://`` allowed, for local servers), ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``/``AWS_DEFAULT_REGION``.
Requests are path-style (``endpoint/bucket/key``), which every S3-compatible store
accepts. Transient failures (5xx and SlowDown, dropped connections, timeouts: at most
60 s per request) are retried with backoff by the client; anything else becomes one ``EnvError`` line that names the
endpoint and bucket but never a key or token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bundler.errors import BundlerError, EnvError, UsageError
from bundler.storage.ports import S3_SCHEME

if TYPE_CHECKING:
    from obstore.store import S3Store

EXTRA_HINT = "S3 storage needs the optional extra: pip install 'story-bundler[s3]' (obstore)."
REQUESTS_PER_JOB = 8  # requests in flight per --jobs: S3 work waits on the network, not the CPU
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-_]{1,254}")
_CREDENTIAL_VARIABLES = ("AWS_SESSION_TOKEN", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_TOKEN")


@dataclass(frozen=True, slots=True)
class S3Url:
    """``s3://bucket/prefix``; ``prefix`` has no leading or trailing slash and may be empty."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, value: str, what: str) -> S3Url:
        rest = value[len(S3_SCHEME) :] if value.startswith(S3_SCHEME) else ""
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        if not _BUCKET.fullmatch(bucket):
            raise UsageError(f"{what} {value!r} is not s3://BUCKET[/PREFIX] with a valid bucket name.")
        parts = prefix.split("/") if prefix else []
        if any(part in ("", ".", "..") for part in parts) or "\\" in prefix or "\x00" in prefix:
            raise UsageError(f"{what} {value!r} has an empty, '.' or '..' segment in its prefix.")
        return cls(bucket, prefix)

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def child(self, relative: str) -> S3Url:
        return S3Url(self.bucket, self.key(relative.strip("/")))

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{S3_SCHEME}{self.bucket}"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    size: int
    etag: str | None
    modified: datetime | None = None


@dataclass(frozen=True, slots=True)
class Versioned:
    """A small object read whole, with the ETag it had (for a conditional write over it)."""

    data: bytes
    etag: str | None


class NotFound(Exception):
    """No object at that key."""


class EmptyObject(Exception):
    """The object exists and holds no bytes (a ranged read of it is not satisfiable)."""


class Changed(Exception):
    """The object no longer has the version (ETag) it was checked at."""


def shown_endpoint(endpoint: str) -> str:
    """The endpoint for messages: scheme, host, port and path, without ``user:password@``."""
    return _USER_INFO.sub(r"\1", endpoint)


# anything between "scheme://" and the last "@" before the host ends
_USER_INFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")


def _check_endpoint(endpoint: str, shown: str) -> None:
    """One line for an endpoint the client would panic on (a space, a control character, no host)."""
    if not endpoint:
        return
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # a port that is not a number raises here
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid or any(ch.isspace() or not ch.isprintable() for ch in endpoint):
        raise EnvError(f"AWS_ENDPOINT_URL {shown!r} is not an http:// or https:// URL of a host.")


def _is_panic(exc: BaseException) -> bool:
    """A Rust panic inside the client (pyo3's PanicException derives from BaseException)."""
    return type(exc).__name__ == "PanicException"


class Conflict(Exception):
    """A conditional write found the object not as expected (moved, created or removed meanwhile)."""


SMALL_OBJECT_CAP = 64 * 1024 * 1024  # pointers, manifests, source records: read whole, never more
PROBE_KEY = ".bundler-probe"  # a name nothing stores: its 404 proves endpoint, bucket and credentials


def _redact(text: str) -> str:
    """The gist of a client error on one line (the S3 error code, else the last cause), no credentials."""
    text = _USER_INFO.sub(r"\1", text)
    code = re.search(r"<Code>([^<]{1,80})</Code>", text)
    lines = text.strip().splitlines()
    line = code.group(1) if code else (lines[0].rsplit(" - ", 1)[-1] if lines else "unknown error")
    for name in _CREDENTIAL_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            line = line.replace(secret, "***")
    return line.strip()[:200]


class S3Client:
    """One bucket behind one connection pool; safe to share between threads."""

    def __init__(self, bucket: str) -> None:
        try:
            from obstore.store import S3Store
        except ImportError:
            raise EnvError(EXTRA_HINT) from None
        self.bucket = bucket
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
        self.endpoint = shown_endpoint(endpoint)  # for messages: never its user-info
        _check_endpoint(endpoint, self.endpoint)
        try:
            self.store: S3Store = S3Store(bucket, **_store_options(endpoint))
        except BaseException as exc:  # the client's own checks, Rust panics included
            if not isinstance(exc, Exception) and not _is_panic(exc):
                raise
            raise EnvError(f"S3 client cannot be configured for {self.where()}: {_redact(str(exc))}.") from None

    def where(self) -> str:
        return f"bucket {self.bucket!r}" + (f" at {self.endpoint}" if self.endpoint else "")

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Any client failure (after the client's own retries) as one environment-error line."""
        from obstore.exceptions import BaseError, PermissionDeniedError, UnauthenticatedError

        try:
            yield
        except (PermissionDeniedError, UnauthenticatedError) as exc:
            reason = f"bad credentials or no permission ({_redact(str(exc))})"
            raise EnvError(f"S3 refused {doing} in {self.where()}: {reason}.") from None
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise EnvError(f"S3 {self.where()} does not exist.") from None
            raise
        except (NotFound, EmptyObject, Changed, BundlerError):
            raise  # ours: the caller decides
        except BaseException as exc:  # anything from the client, a Rust panic included, is one line
            if not isinstance(exc, (BaseError, Exception)) and not _is_panic(exc):
                raise  # KeyboardInterrupt, SystemExit
            reason = _redact(str(exc))
            if reason in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or "403" in reason:
                reason = f"bad credentials or no permission ({reason})"
            raise EnvError(f"S3 {doing} failed in {self.where()}: {reason}.") from None

    def read_range(self, key: str, start: int, end: int) -> tuple[bytes, ObjectInfo]:
        """Bytes ``start``..``end`` (exclusive; fewer at the end of the object) and the object's size/ETag."""
        import obstore

        try:
            result = obstore.get(self.store, key, options={"range": (start, end)})
            data = bytes(result.bytes())
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise EnvError(f"S3 {self.where()} does not exist.") from None
            raise NotFound(key) from None
        except Exception as exc:
            if "416" in str(exc) or "InvalidRange" in str(exc):
                raise EmptyObject(key) from None
            raise
        meta = result.meta
        return data, ObjectInfo(int(meta["size"]), meta.get("e_tag"))

    def read_all(self, key: str) -> bytes | None:
        """A small object whole, or None when there is none."""
        found = self.read_versioned(key)
        return None if found is None else found.data

    def read_versioned(self, key: str) -> Versioned | None:
        """A small object whole with its ETag, or None when there is none; one larger than
        ``SMALL_OBJECT_CAP`` is not a document bundler wrote (an environment error)."""
        import obstore

        try:
            result = obstore.get(self.store, key)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise EnvError(f"S3 {self.where()} does not exist.") from None
            return None
        if int(result.meta["size"]) > SMALL_OBJECT_CAP:
            raise EnvError(f"S3 object {key.rsplit('/', 1)[-1]} in {self.where()} is too large to be bundler's.")
        return Versioned(bytes(result.bytes()), result.meta.get("e_tag"))

    def exists(self, key: str) -> bool:
        """One HEAD request."""
        import obstore

        try:
            obstore.head(self.store, key)
        except FileNotFoundError:
            return False
        return True

    def opened(self, key: str) -> tuple[ObjectInfo, Iterator[bytes]]:
        """One whole GET: the object's size and ETag, and its bytes as they arrive (NotFound if none)."""
        import obstore

        try:
            result = obstore.get(self.store, key)
        except FileNotFoundError as exc:
            if "NoSuchBucket" in str(exc):
                raise EnvError(f"S3 {self.where()} does not exist.") from None
            raise NotFound(key) from None
        meta = result.meta
        return ObjectInfo(int(meta["size"]), meta.get("e_tag")), iter(result.stream(min_chunk_size=1 << 20))

    def stream(self, key: str, etag: str | None, chunk: int) -> Iterator[bytes]:
        """The object's bytes in chunks, failing with ``Changed`` if its ETag is no longer ``etag``."""
        import obstore
        from obstore.exceptions import PreconditionError

        options: dict[str, Any] = {"if_match": etag} if etag else {}
        try:
            result = obstore.get(self.store, key, options=options)  # type: ignore[arg-type]
        except (PreconditionError, FileNotFoundError):
            raise Changed(key) from None
        yield from result.stream(min_chunk_size=chunk)

    def probe(self, prefix: str) -> None:
        """One request that lists nothing: the endpoint answers, the bucket exists and the credentials
        are good. (obstore's listing has no max-keys: even ``chunk_size=1`` fetches a page of 1,000
        keys, and parsing them would make a story depend on keys it does not refer to; a GET of a
        key nothing stores answers a short 404 instead.)"""
        self.read_all(f"{prefix}/{PROBE_KEY}" if prefix else PROBE_KEY)

    def listing(self, prefix: str) -> dict[str, ObjectInfo]:
        """Every object under ``prefix/`` by its key relative to the prefix."""
        import obstore

        found: dict[str, ObjectInfo] = {}
        base = f"{prefix}/" if prefix else ""
        for batch in obstore.list(self.store, base or None, chunk_size=1000):
            for meta in batch:
                path = str(meta["path"])
                if path.startswith(base):
                    found[path[len(base) :]] = ObjectInfo(
                        int(meta["size"]), meta.get("e_tag"), meta.get("last_modified")
                    )
        return found

    def put_file(self, key: str, path: Path) -> None:
        import obstore

        obstore.put(self.store, key, path)

    def put_bytes(self, key: str, data: bytes, *, over: str | bool | None = False) -> None:
        """Write ``data``. ``over``: False writes unconditionally; None only if there is no object
        yet (If-None-Match: *); an ETag only over that very version (If-Match); else ``Conflict``."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        if over is False:
            obstore.put(self.store, key, data)
            return
        mode: Any = "create" if over is None or over is True else {"e_tag": over}
        try:
            obstore.put(self.store, key, data, mode=mode)
        except (AlreadyExistsError, PreconditionError, FileNotFoundError):
            raise Conflict(key) from None

    def copy(self, source: str, destination: str) -> None:
        """A server-side copy (CopyObject): the bytes never leave the store."""
        import obstore

        obstore.copy(self.store, source, destination)

    def delete(self, keys: list[str]) -> None:
        """Bulk deletes (one request per 1,000 keys)."""
        import obstore

        if keys:
            obstore.delete(self.store, keys)


def in_flight(jobs: int) -> int:
    """Requests to run at once for ``--jobs``."""
    return max(1, jobs) * REQUESTS_PER_JOB


def _store_options(endpoint: str) -> dict[str, Any]:
    """Only the standard variables; no fallback to instance metadata (a network call off this machine)."""
    has_keys = bool(os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if not has_keys and not os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        raise EnvError("S3 storage needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a web identity token).")
    config: dict[str, Any] = {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "virtual_hosted_style_request": False,  # path-style: Supabase Storage, MinIO, moto need it
    }
    if endpoint:
        config["endpoint"] = endpoint
    if has_keys:
        config["access_key_id"] = os.environ["AWS_ACCESS_KEY_ID"]
        config["secret_access_key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        if os.environ.get("AWS_SESSION_TOKEN"):
            config["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    return {
        "config": config,
        "client_options": {
            "allow_http": endpoint.startswith("http://"),
            "connect_timeout": timedelta(seconds=10),
            # a stalled request fails in a minute and is retried; a body cut off is resumed where it
            # stopped (a ranged GET), so a large object needs no longer limit
            "timeout": timedelta(seconds=60),
            "read_timeout": timedelta(seconds=20),
        },
        # transient errors: a few quick retries, so unreachable storage fails in seconds, not minutes
        "retry_config": {
            "max_retries": 4,
            "retry_timeout": timedelta(seconds=30),
            "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=5), "base": 2},
        },
    }
