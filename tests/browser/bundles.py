"""Bundles assembled once per test session from a real database, and helpers to drive
the player through its ``window.__player`` hook."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page

from bundler import api
from tests.browser.stories import CAPTIONED, DAMAGED, HOSTILE, LANTERN, BuiltStory, StorySpec, create_story
from tests.conftest import new_database

SPEED = 25  # divides the player's waits: a 4 s hold becomes 160 ms
EXPORTED_AT = "2026-02-02T00:00:00Z"


@dataclass
class Bundle:
    story: BuiltStory
    path: Path

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def url(self, speed: float = SPEED) -> str:
        return f"{(self.path / 'index.html').as_uri()}?speed={speed}"

    def scenelet(self, key: str) -> dict[str, Any]:
        uid = self.story.id(key)
        return next(s for s in self.manifest["scenelets"] if s["id"] == uid)

    def first_image(self, key: str) -> str:
        return next(s["imagePath"] for s in self.scenelet(key)["shots"] if s["imagePath"])  # type: ignore[no-any-return]


@dataclass
class Bundles:
    lantern: Bundle
    hostile: Bundle
    damaged: Bundle
    captioned: Bundle


def build_bundles(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    """The test stories, written to one database and assembled once for the session."""
    database = new_database(pg_admin_uri)
    work = tmp_path_factory.mktemp("player-bundles")
    assets, out = work / "assets", work / "out"
    assets.mkdir()

    def build(spec: StorySpec) -> Bundle:
        with psycopg.connect(database.conninfo, autocommit=True) as conn:
            story = create_story(conn, assets, spec)
        report = api.assemble(
            story.story_id, database=database, assets_root=assets, out_dir=out, exported_at=EXPORTED_AT
        )
        assert report.ok, report.problems
        assert report.bundle_path is not None
        return Bundle(story, report.bundle_path)

    result = Bundles(build(LANTERN), build(HOSTILE), build(DAMAGED), build(CAPTIONED))
    # damage the assembled bundle the way a bad copy would: a key frame and a
    # narration file that the manifest still lists are gone
    damaged = result.damaged.scenelet("root")["shots"]
    (result.damaged.path / damaged[1]["imagePath"]).unlink()
    (result.damaged.path / damaged[2]["audioPath"]).unlink()
    # the lit path's first key frame is gone: its choice thumbnail falls back to the second
    (result.captioned.path / result.captioned.first_image("lit")).unlink()
    return result


# ------------------------------------------------------------------ helpers


def open_bundle(page: Page, bundle: Bundle, speed: float = SPEED) -> None:
    page.goto(bundle.url(speed))
    page.wait_for_function("() => window.__player && window.__player.state().screen === 'start'")


def state(page: Page) -> dict[str, Any]:
    return page.evaluate("window.__player.state()")  # type: ignore[no-any-return]


def events(page: Page, kind: str | None = None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.__player.events()")
    return [e for e in found if kind is None or e["type"] == kind]


def wait_for(page: Page, condition: str, timeout: float = 10_000) -> None:
    """Waits until ``condition`` (JS over ``s``, the player state) holds."""
    page.wait_for_function(f"() => {{ const s = window.__player.state(); return {condition}; }}", timeout=timeout)


def pause_when(page: Page, condition: str, via: str) -> None:
    """Pauses in the animation frame where ``condition`` first holds.

    A click or key press sent from here could arrive after a short wait is
    already over, so the pause is triggered inside the page: a click on the
    pause button, or a Space keydown.
    """
    action = {
        "button": "document.getElementById('pause-button').click()",
        "key": "document.dispatchEvent(new KeyboardEvent('keydown', {key: ' ', code: 'Space', bubbles: true}))",
    }[via]
    page.evaluate(
        f"""() => new Promise((resolve) => {{
            const tick = () => {{
                const s = window.__player.state();
                if ({condition}) {{ {action}; resolve(); }} else requestAnimationFrame(tick);
            }};
            tick();
        }})"""
    )
    assert state(page)["paused"]


def assert_no_csp_violations(page: Page) -> None:
    assert page.evaluate("window.__cspViolations") == []


def wait_for_choice_images(page: Page) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('#choice-list img')].every((img) => img.complete)")


def shot(page: Page, folder: Path, name: str) -> Path:
    target = folder / name
    page.screenshot(path=str(target))
    return target
