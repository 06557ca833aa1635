"""A ``--web`` bundle (WebP key frames, AAC narration in M4A) plays in Chromium like its master."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import Page

from bundler import api
from bundler.media.encode import WebSettings
from tests.browser.bundles import EXPORTED_AT, Bundle, assert_no_csp_violations, events, open_bundle, wait_for
from tests.browser.stories import LANTERN, create_story
from tests.conftest import new_database

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web_lantern(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    database = new_database(pg_admin_uri)
    work = tmp_path_factory.mktemp("web-bundle")
    (work / "assets").mkdir()
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        story = create_story(conn, work / "assets", LANTERN)
    report = api.assemble(
        story.story_id,
        database=database,
        assets_root=work / "assets",
        out_dir=work / "out",
        exported_at=EXPORTED_AT,
        web=WebSettings(),
    )
    assert report.ok, report.problems
    assert report.bundle_path is not None
    return Bundle(story, report.bundle_path)


def test_web_bundle_plays_through_to_the_choice(page: Page, web_lantern: Bundle) -> None:
    ids = web_lantern.story.ids
    assert web_lantern.first_image("harbor").endswith(".webp")
    open_bundle(page, web_lantern)
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")
    # the WebP frames decoded and the M4A narration played to its end, shot by shot
    shots = [(e["sceneletId"], e["shotIndex"]) for e in events(page, "shot")]
    assert shots == [(ids["harbor"], 1), (ids["harbor"], 2), (ids["signal"], 1)]
    kinds = [e["type"] for e in events(page)]
    assert kinds.count("narration-start") == 2 and kinds.count("narration-end") == 2
    assert "image-error" not in kinds and "narration-skipped" not in kinds
    natural = page.evaluate(
        "[...document.querySelectorAll('.frame')].filter((f) => f.src.endsWith('.webp')).map((f) => f.naturalWidth)"
    )
    assert natural and all(width > 0 for width in natural)
    page.wait_for_function("() => window.__player.events().some((e) => e.type === 'branch-narration')")
    assert_no_csp_violations(page)
