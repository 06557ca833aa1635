"""Deterministic ``.zip`` / ``.tar.gz`` archives of a published bundle (docs/design.md §3).

The same bundle and timestamp always give the same bytes, whatever the umask,
time zone, file modes, owners or modification times on disk: every entry gets
fixed metadata and entries are written in sorted path order. File contents are
streamed, and the archive appears atomically (temp file beside it, then
``os.replace``), so a failure leaves neither a partial archive nor debris.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Literal

from bundler.errors import EnvError, UsageError

ArchiveFormat = Literal["zip", "tar.gz"]
FORMATS: tuple[ArchiveFormat, ...] = ("zip", "tar.gz")

_FILE_MODE = 0o644
_DIR_MODE = 0o755
_CHUNK = 1 << 20
_ZIP_UNIX = 3  # create_system: Unix, so readers honour the permission bits in external_attr
_ZIP_DOS_DIRECTORY = 0x10
_ZIP_FIRST_YEAR, _ZIP_LAST_YEAR = 1980, 2107  # the years a zip (DOS) time can express


def archive_path(bundle_dir: Path, fmt: ArchiveFormat) -> Path:
    return bundle_dir.parent / f"{bundle_dir.name}.{fmt}"


def archive_timestamp(manifest_exported_at: str) -> datetime:
    """The time every archive entry carries: the manifest's ``exportedAt``, in UTC.

    SOURCE_DATE_EPOCH is honoured through ``exportedAt`` itself, which already
    derives from it unless ``--exported-at`` is given (docs/design.md §3); reading it
    again here would date the entries differently from the manifest they hold.
    """
    try:
        parsed = datetime.fromisoformat(manifest_exported_at.strip())
    except ValueError:
        raise ValueError(f"exportedAt {manifest_exported_at!r} is not an ISO 8601 time") from None
    return _as_utc(parsed)


def check_archive_time(fmt: ArchiveFormat, timestamp: datetime) -> None:
    """Refuse, before anything is written, a time the format cannot store (zip: 1980 to 2107)."""
    if fmt not in FORMATS:
        raise UsageError(f"Unknown archive format {fmt!r}: use zip or tar.gz.")
    when = _as_utc(timestamp)
    if fmt == "zip" and not _ZIP_FIRST_YEAR <= when.year <= _ZIP_LAST_YEAR:
        raise UsageError(
            f"--archive zip cannot store the time {when.isoformat().replace('+00:00', 'Z')} "
            f"(zip times run from {_ZIP_FIRST_YEAR} to {_ZIP_LAST_YEAR}); "
            "use --archive tar.gz or choose another --exported-at."
        )


def build_archive(
    source_dir: Path,
    top: str,
    fmt: ArchiveFormat,
    timestamp: datetime,
    destination: Path,
    stop_if_cancelled: Callable[[], None] | None = None,
) -> Path:
    """Write the archive of ``source_dir`` (entries under ``top/``) to the new file ``destination``.

    ``stop_if_cancelled`` is called between chunks, so a run can stop (raise) promptly; on any
    failure or interrupt ``destination`` is removed.
    """
    check_archive_time(fmt, timestamp)
    entries = _entries(source_dir, top)
    when = _as_utc(timestamp)
    try:
        # O_EXCL with 0o666: a fresh private name, and the usual umask-derived mode for the result
        with open(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as out:
            if fmt == "zip":
                _write_zip(out, entries, when, stop_if_cancelled)
            else:
                _write_tar_gz(out, entries, when, stop_if_cancelled)
            out.flush()
            os.fsync(out.fileno())
    except BaseException as exc:  # interrupts too: never leave the temp file behind
        with contextlib.suppress(OSError):
            destination.unlink()
        if isinstance(exc, OSError):
            where = exc.filename or destination
            raise EnvError(f"Cannot write the archive {destination}: {exc.strerror or exc} ({where}).") from exc
        raise
    return destination


class _Checked(io.RawIOBase):
    """A source file whose every read first asks ``stop_if_cancelled`` whether to go on."""

    def __init__(self, source: BinaryIO, stop_if_cancelled: Callable[[], None]) -> None:
        self.source, self.stop_if_cancelled = source, stop_if_cancelled

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.source.close()
        super().close()

    def read(self, size: int | None = -1) -> bytes:
        self.stop_if_cancelled()
        return self.source.read(-1 if size is None else size)


def _open_source(path: Path, stop_if_cancelled: Callable[[], None] | None) -> BinaryIO:
    source = open(path, "rb")  # noqa: SIM115 - closed by the caller's with-block
    return source if stop_if_cancelled is None else _Checked(source, stop_if_cancelled)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # path inside the archive, under the bundle's top folder, no trailing slash
    source: Path
    size: int | None  # None for a folder


def _entries(bundle_dir: Path, top: str) -> list[_Entry]:
    entries = [_Entry(top, bundle_dir, None)]
    pending = [bundle_dir]  # explicit stack: folder depth costs no recursion
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as listing:
            for item in listing:
                source = Path(item.path)
                name = f"{top}/{source.relative_to(bundle_dir).as_posix()}"
                if item.is_dir(follow_symlinks=False):
                    entries.append(_Entry(name, source, None))
                    pending.append(source)
                elif item.is_file(follow_symlinks=False):
                    entries.append(_Entry(name, source, item.stat(follow_symlinks=False).st_size))
                else:
                    # a bundle holds only folders and regular files; following a link could leak
                    raise EnvError(f"{source} is not a regular file or folder; it cannot be archived.")
    # code-point order equals UTF-8 byte order, the order `sort` and SHA256SUMS use
    entries.sort(key=lambda entry: entry.name)
    return entries


def _write_tar_gz(
    out: BinaryIO, entries: list[_Entry], when: datetime, stop_if_cancelled: Callable[[], None] | None
) -> None:
    mtime = int(when.timestamp())
    # no file name and mtime 0 in the gzip header: neither may leak into the bytes
    with (
        gzip.GzipFile(fileobj=out, mode="wb", filename="", mtime=0, compresslevel=9) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.size is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                archive.addfile(info)
                continue
            info.mode = _FILE_MODE
            info.size = entry.size
            with _open_source(entry.source, stop_if_cancelled) as source:
                archive.addfile(info, source)  # copies exactly info.size bytes, in chunks


def _write_zip(
    out: BinaryIO, entries: list[_Entry], when: datetime, stop_if_cancelled: Callable[[], None] | None
) -> None:
    date_time = when.timetuple()[:6]
    with zipfile.ZipFile(out, mode="w") as archive:
        for entry in entries:
            if entry.size is None:
                info = zipfile.ZipInfo(f"{entry.name}/", date_time)
                info.create_system = _ZIP_UNIX
                info.external_attr = (stat.S_IFDIR | _DIR_MODE) << 16 | _ZIP_DOS_DIRECTORY
                archive.writestr(info, b"")  # ZipFile.mkdir(ZipInfo) is broken in early 3.11
                continue
            info = zipfile.ZipInfo(entry.name, date_time)
            info.create_system = _ZIP_UNIX
            info.external_attr = (stat.S_IFREG | _FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            # known up front, so zip64 is chosen from the size alone, never from timing
            info.file_size = entry.size
            with _open_source(entry.source, stop_if_cancelled) as source, archive.open(info, mode="w") as target:
                shutil.copyfileobj(source, target, _CHUNK)


def _as_utc(moment: datetime) -> datetime:
    # a naive time is taken as UTC, never as local time: TZ must not change the bytes
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
