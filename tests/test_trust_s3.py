"""Object storage: a story depends only on the keys it refers to (issue 19 §5)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bundler import api
from bundler.db.connect import DatabaseTarget
from tests import test_assemble
from tests.builders import StoryBuilder
from tests.s3_server import S3Server

story = test_assemble.story  # the branching story with all its media, as a fixture here too


@pytest.mark.parametrize("odd", ["other-story/bad\x01name.png", "other-story/./x.png", "other-story/../x.png"])
def test_an_unparseable_key_elsewhere_under_the_root_does_not_fail_a_story(
    odd: str,
    conn: psycopg.Connection,
    database: DatabaseTarget,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
    tmp_path: Path,
) -> None:
    story = StoryBuilder()
    story.scenelet(terminal=True)
    story.write_media(assets_root)
    story.insert(conn)
    s3_server.upload_tree(assets_root, s3_bucket, "media")
    _put_raw(s3_server, s3_bucket, f"media/{odd}")  # a key the client cannot parse, in another story's folder
    root = f"s3://{s3_bucket}/media"
    assert api.check(story.story_id, database=database, assets_root=root).ok
    report = api.assemble(story.story_id, database=database, assets_root=root, out_dir=tmp_path / "out")
    assert report.ok, report.problems


def _put_raw(server: S3Server, bucket: str, key: str) -> None:
    """A PUT through plain HTTP (moto accepts unsigned requests): the client itself refuses such keys."""
    import urllib.parse
    import urllib.request

    url = f"{server.endpoint}/{bucket}/{urllib.parse.quote(key, safe='/')}"
    if "/./" in key or "/../" in key:  # keep the dot segments: urllib would not normalize, moto stores them
        url = f"{server.endpoint}/{bucket}/" + "/".join(urllib.parse.quote(part, safe="") for part in key.split("/"))
    urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="PUT"), timeout=10).close()
    assert any(k.endswith(key.rsplit("/", 1)[-1]) for k in _raw_keys(server, bucket)), key


def _raw_keys(server: S3Server, bucket: str) -> list[str]:
    import re
    import urllib.request

    with urllib.request.urlopen(f"{server.endpoint}/{bucket}?list-type=2", timeout=10) as response:
        return re.findall(r"<Key>([^<]*)</Key>", response.read().decode())


# --- verify s3:// reads the pointer it follows (issue 19 §5) ------------------------------------


def _published(story: StoryBuilder, database: DatabaseTarget, assets_root: Path, out: str) -> dict[str, object]:
    from tests.cli_helpers import json_of, run_cli

    result = run_cli(
        "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root, "--out", out,
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json_of(result)  # type: ignore[no-any-return]


def _verify(url: str) -> tuple[int, dict[str, object]]:
    from tests.cli_helpers import json_of, run_cli

    result = run_cli("verify", url, "--json")
    return result.returncode, json_of(result)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda p, other: p.update(storyId=other), "names story"),
        (lambda p, other: p.update(version="0123456789abcdef", bundlePath="0123456789abcdef/"), "does not exist"),
        (lambda p, other: p.update(formatVersion=2), "format version 1"),
        (lambda p, other: p.update(format="something-else"), "story-bundle-pointer"),
    ],
    ids=["another story", "a missing version", "another format version", "another format"],
)
def test_verify_says_what_is_wrong_with_the_pointer(
    change: object,
    says: str,
    story: StoryBuilder,
    database: DatabaseTarget,
    assets_root: Path,
    s3_server: S3Server,
    s3_bucket: str,
) -> None:
    import json
    import uuid

    _published(story, database, assets_root, f"s3://{s3_bucket}/p")
    key = f"p/{story.story_id}/current.json"
    pointer = json.loads(s3_server.get(s3_bucket, key) or b"")
    change(pointer, str(uuid.uuid4()))  # type: ignore[operator]
    s3_server.put(s3_bucket, key, json.dumps(pointer).encode())
    code, document = _verify(f"s3://{s3_bucket}/p/{story.story_id}")
    assert code == 3
    assert says in str(document["error"]["message"])  # type: ignore[index]


def test_verify_checks_the_manifest_the_pointer_vouches_for(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    import json

    _published(story, database, assets_root, f"s3://{s3_bucket}/p")
    key = f"p/{story.story_id}/current.json"
    pointer = json.loads(s3_server.get(s3_bucket, key) or b"")
    pointer["manifestSha256"] = "0" * 64
    s3_server.put(s3_bucket, key, json.dumps(pointer).encode())
    code, document = _verify(f"s3://{s3_bucket}/p/{story.story_id}")
    assert code == 1
    assert [(p["code"], p["path"]) for p in document["problems"]] == [("pointer-mismatch", "current.json")]  # type: ignore[index, union-attr]


def test_republish_repairs_an_object_changed_in_place_with_the_same_size(
    story: StoryBuilder, database: DatabaseTarget, assets_root: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """Sizes alone would call the damaged object present: the ETag it was published with says otherwise."""
    from tests.cli_helpers import run_cli

    published = _published(story, database, assets_root, f"s3://{s3_bucket}/p")
    version = str(published["bundlePath"]).rsplit("/", 1)[-1]
    key = next(k for k in s3_server.keys(s3_bucket, f"p/{story.story_id}/{version}/assets/") if k.endswith(".png"))
    original = s3_server.get(s3_bucket, key) or b""
    s3_server.put(s3_bucket, key, original[:-1] + bytes([original[-1] ^ 1]))  # same size, other bytes
    assert _verify(f"s3://{s3_bucket}/p/{story.story_id}")[0] == 1

    again = run_cli(
        "assemble", story.story_id, "--database-url", database.conninfo, "--assets-root", assets_root,
        "--out", f"s3://{s3_bucket}/p", "--overwrite",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert s3_server.get(s3_bucket, key) == original
    assert _verify(f"s3://{s3_bucket}/p/{story.story_id}")[0] == 0
