"""Object storage: a story depends only on the keys it refers to (issue 19 §5)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from bundler import api
from bundler.db.connect import DatabaseTarget
from tests.builders import StoryBuilder
from tests.s3_server import S3Server


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
