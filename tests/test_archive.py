"""Deterministic archives: same bundle and time give the same bytes, whatever the machine says."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import tarfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bundler.api import verify as verify_bundle
from bundler.bundle.archive import FORMATS, archive_timestamp
from bundler.errors import EnvError, UsageError
from bundler.storage.local.destination import write_archive
from tests.bundle_factory import EXPORTED_AT, make_bundle

REPO = Path(__file__).resolve().parents[1]
WHEN = archive_timestamp(EXPORTED_AT)  # 2024-05-01T12:30:45Z


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return make_bundle(tmp_path / "out")


def expected_names(bundle: Path) -> list[str]:
    """Every folder and file under the top folder, sorted by path."""
    inside = [f"{bundle.name}/{p.relative_to(bundle).as_posix()}" for p in bundle.rglob("*")]
    return sorted([bundle.name, *inside])


def test_tar_gz_entries_and_headers(bundle: Path) -> None:
    archive = write_archive(bundle, "tar.gz", WHEN)
    assert archive == bundle.parent / f"{bundle.name}.tar.gz"
    raw = archive.read_bytes()
    assert raw[:3] == b"\x1f\x8b\x08"
    assert raw[3] == 0, "gzip header flags: no file name"
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime 0"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == expected_names(bundle)
    for member in members:
        assert member.mtime == int(WHEN.timestamp()) == 1714566645
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mode == (0o755 if member.isdir() else 0o644)
        assert member.isdir() or member.isfile()
        if member.isfile():
            assert member.size == (bundle.parent / member.name).stat().st_size


def test_zip_entries_and_headers(bundle: Path) -> None:
    archive = write_archive(bundle, "zip", WHEN)
    assert archive == bundle.parent / f"{bundle.name}.zip"
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        assert zf.testzip() is None
    assert [i.filename.rstrip("/") for i in infos] == expected_names(bundle)
    for info in infos:
        assert info.date_time == (2024, 5, 1, 12, 30, 44)  # zip stores seconds in 2-second steps
        assert info.create_system == 3
        mode = info.external_attr >> 16
        assert mode == (0o40755 if info.is_dir() else 0o100644)


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_bytes_whatever_the_files_on_disk_say(bundle: Path, fmt: Any) -> None:
    first = write_archive(bundle, fmt, WHEN).read_bytes()
    # owners' habits: other modification times and permissions must not leak in
    for path in bundle.rglob("*"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    (bundle / "index.html").chmod(0o600)
    (bundle / "assets").chmod(0o700)
    second = write_archive(bundle, fmt, WHEN).read_bytes()
    assert first == second
    naive = write_archive(bundle, fmt, WHEN.replace(tzinfo=None)).read_bytes()
    assert naive == first, "a naive time means UTC"


_SCRIPT = """
import os, sys, time
from pathlib import Path
os.umask(int(sys.argv[2], 8))
print(time.strftime("%z", time.localtime(0)))
from bundler.bundle.archive import archive_timestamp
from bundler.storage.local.destination import write_archive
from tests.bundle_factory import EXPORTED_AT, make_bundle
bundle = make_bundle(Path(sys.argv[1]))
for fmt in ("zip", "tar.gz"):
    write_archive(bundle, fmt, archive_timestamp(EXPORTED_AT))
"""


def test_same_bytes_across_umask_and_time_zone(tmp_path: Path) -> None:
    runs = {"a": ("UTC", "022"), "b": ("Pacific/Kiritimati", "077"), "c": ("America/St_Johns", "002")}
    offsets = set()
    for name, (tz, umask) in runs.items():
        env = {**os.environ, "TZ": tz}
        env.pop("SOURCE_DATE_EPOCH", None)
        argv = [sys.executable, "-c", _SCRIPT, str(tmp_path / name), umask]
        offsets.add(subprocess.run(argv, cwd=REPO, env=env, check=True, capture_output=True, text=True).stdout)
    assert len(offsets) == 3, "the time zones did take effect"
    for suffix in (".zip", ".tar.gz"):
        archives = [next((tmp_path / name).glob(f"*{suffix}")).read_bytes() for name in runs]
        assert archives[0] == archives[1] == archives[2], suffix
    # the umask did reach the bundle files, so equality is not a coincidence
    modes = {(next((tmp_path / name).glob("*/index.html")).stat().st_mode & 0o777) for name in runs}
    assert len(modes) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_unpacked_archive_verifies_and_matches(bundle: Path, fmt: Any, tmp_path: Path) -> None:
    archive = write_archive(bundle, fmt, WHEN)
    unpacked = tmp_path / "unpacked"
    if fmt == "zip":
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(unpacked)
    else:
        with tarfile.open(archive) as tar:
            tar.extractall(unpacked, filter="data")
    assert sorted(p.name for p in unpacked.iterdir()) == [bundle.name]
    copy = unpacked / bundle.name
    assert verify_bundle(copy).ok
    files = sorted(p.relative_to(bundle) for p in bundle.rglob("*") if p.is_file())
    assert sorted(p.relative_to(copy) for p in copy.rglob("*") if p.is_file()) == files
    assert all((copy / f).read_bytes() == (bundle / f).read_bytes() for f in files)


@pytest.mark.parametrize("when", [datetime(1970, 1, 1, tzinfo=UTC), datetime(2108, 1, 1, tzinfo=UTC)])
def test_zip_refuses_a_time_it_cannot_store_and_tar_keeps_it(bundle: Path, when: datetime) -> None:
    # every entry's time is exportedAt (DESIGN §3): a zip cannot say 1970 or 2108, so it is refused
    with pytest.raises(UsageError, match="zip times run from 1980 to 2107"):
        write_archive(bundle, "zip", when)
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]
    with tarfile.open(write_archive(bundle, "tar.gz", when)) as tar:
        assert {m.mtime for m in tar.getmembers()} == {when.timestamp()}


# --- atomic writes --------------------------------------------------------------------------------


def _fail_after(monkeypatch: pytest.MonkeyPatch, owner: Any, method: str, calls: int, exc: BaseException) -> None:
    real = getattr(owner, method)
    seen = [0]

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        if seen[0] > calls:
            raise exc
        return real(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, flaky)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()])
def test_failure_midway_leaves_no_debris_and_keeps_the_old_archive(
    bundle: Path, fmt: Any, exc: BaseException, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = write_archive(bundle, fmt, WHEN).read_bytes()
    owner, method = (zipfile.ZipFile, "open") if fmt == "zip" else (tarfile.TarFile, "addfile")
    _fail_after(monkeypatch, owner, method, 5, exc)
    expected = EnvError if isinstance(exc, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        write_archive(bundle, fmt, datetime(2030, 1, 1, tzinfo=UTC))
    assert sorted(p.name for p in bundle.parent.iterdir()) == sorted([bundle.name, f"{bundle.name}.{fmt}"])
    assert (bundle.parent / f"{bundle.name}.{fmt}").read_bytes() == old


def test_symlink_in_the_bundle_is_refused_before_writing(bundle: Path) -> None:
    (bundle / "assets" / "link").symlink_to("/etc/passwd")
    with pytest.raises(EnvError, match="not a regular file"):
        write_archive(bundle, "zip", WHEN)
    assert [p.name for p in bundle.parent.iterdir()] == [bundle.name]


# --- timestamp ------------------------------------------------------------------------------------


def test_archive_timestamp_is_the_manifest_time(monkeypatch: pytest.MonkeyPatch) -> None:
    assert archive_timestamp("2026-03-01T12:00:00.000Z") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert archive_timestamp("2026-03-01T13:00:00+01:00") == datetime(2026, 3, 1, 12, tzinfo=UTC)
    # exportedAt already honours SOURCE_DATE_EPOCH; an explicit --exported-at must win for both
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert archive_timestamp(EXPORTED_AT) == datetime(2024, 5, 1, 12, 30, 45, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        archive_timestamp("yesterday")
