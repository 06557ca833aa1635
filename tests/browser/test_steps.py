"""Stepping through shots (← previous shot, → next shot) along the path the viewer
took, and the "story so far" panel (L) of captions already shown (issue 18 §2)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from tests.browser.bundles import Bundle, Bundles, events, open_bundle, pause_when, state, wait_for
from tests.browser.stories import LONG_NARRATION, XSS_IMG, XSS_SCRIPT

pytestmark = pytest.mark.browser

# Real pacing: a shot lasts about two seconds (a silent one four), so each
# key press is looked at before the story moves on by itself.
REAL_TIME = 1


def _at(page: Page, bundle: Bundle, key: str, position: int, screen: str = "playing") -> None:
    uid = bundle.story.id(key)
    wait_for(page, f"s.screen === '{screen}' && s.sceneletId === '{uid}' && s.shotPosition === {position}")


def _path(bundle: Bundle, *keys: str) -> list[str]:
    return [bundle.story.id(key) for key in keys]


def _history(page: Page) -> list[str]:
    return page.locator("#history-list li").evaluate_all("(items) => items.map((i) => i.textContent)")


# ------------------------------------------------------------------ previous shot


def test_previous_shot_by_key_crosses_scenes_and_choices_back_along_the_path(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    open_bundle(page, lantern, speed=REAL_TIME)
    page.keyboard.press("Enter")
    _at(page, lantern, "harbor", 0)
    page.keyboard.press("ArrowLeft")  # the story's first shot: it starts over
    _at(page, lantern, "harbor", 0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _at(page, lantern, "signal", 0)
    assert state(page)["path"] == _path(lantern, "harbor", "signal")

    page.keyboard.press("ArrowLeft")  # back across the scene boundary: the scene before, its last shot
    _at(page, lantern, "harbor", 1)
    assert state(page)["path"] == _path(lantern, "harbor")
    assert state(page)["imagePath"] == lantern.scenelet("harbor")["shots"][1]["imagePath"]
    page.keyboard.press("ArrowLeft")
    _at(page, lantern, "harbor", 0)

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # past the branch scene's last shot: its choice
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("2")
    _at(page, lantern, "boat", 0)
    page.keyboard.press("ArrowLeft")  # the step before a chosen scene is the choice
    wait_for(page, f"s.screen === 'choice' && s.sceneletId === '{lantern.story.id('signal')}'")
    assert state(page)["path"] == _path(lantern, "harbor", "signal")
    assert page.evaluate("document.activeElement.id") == "choice-prompt"
    page.keyboard.press("ArrowLeft")  # and before the choice, the branch scene's last shot
    _at(page, lantern, "signal", 0)
    assert page.evaluate("document.activeElement.id") == "story"  # not left on the hidden overlay

    page.keyboard.press("ArrowRight")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("1")
    _at(page, lantern, "tower", 0)
    page.keyboard.press("ArrowRight")  # forward past the end: the ending, and → does nothing more
    wait_for(page, "s.screen === 'terminal'")
    page.keyboard.press("ArrowRight")
    assert state(page)["screen"] == "terminal"
    page.keyboard.press("ArrowLeft")  # from the ending: its scene's last shot, playing again
    _at(page, lantern, "tower", 0)
    assert state(page)["path"] == _path(lantern, "harbor", "signal", "tower")
    assert [e["screen"] for e in events(page, "previous-shot")] == ["playing"] * 3 + ["choice"] + ["playing"] * 2


def test_previous_shot_button_is_labelled_and_steps_back(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    open_bundle(page, lantern, speed=REAL_TIME)
    page.click("#start-button")
    button = page.get_by_role("button", name="Previous shot")
    assert button.is_visible() and button.get_attribute("aria-keyshortcuts") == "ArrowLeft"
    page.keyboard.press("ArrowRight")
    _at(page, lantern, "harbor", 1)
    page.keyboard.press("Space")  # paused: stepping back plays the earlier shot
    button.click()
    _at(page, lantern, "harbor", 0)
    assert not state(page)["paused"]
    assert page.evaluate("document.activeElement.id") == "previous-button"  # focus stays on the control
    page.click("#next-button")
    page.click("#next-button")
    _at(page, lantern, "signal", 0)
    button.click()
    _at(page, lantern, "harbor", 1)
    assert state(page)["path"] == _path(lantern, "harbor")


def test_continue_after_stepping_back_resumes_at_the_stepped_back_shot(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    open_bundle(page, lantern, speed=REAL_TIME)
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    _at(page, lantern, "signal", 0)
    page.keyboard.press("ArrowLeft")
    _at(page, lantern, "harbor", 1)
    page.reload()
    page.wait_for_function("() => window.__player.state().screen === 'start'")
    page.click("#continue-button")
    _at(page, lantern, "harbor", 1)
    first = events(page, "shot")[0]
    assert (first["sceneletId"], first["shotIndex"]) == (lantern.story.id("harbor"), 2)
    assert state(page)["path"] == _path(lantern, "harbor")

    # stepped back onto a choice: Continue brings that choice back, not the scene chosen after it
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("2")
    _at(page, lantern, "boat", 0)
    page.keyboard.press("ArrowLeft")
    wait_for(page, "s.screen === 'choice'")
    page.reload()
    page.wait_for_function("() => window.__player.state().screen === 'start'")
    page.click("#continue-button")
    wait_for(page, f"s.screen === 'choice' && s.sceneletId === '{lantern.story.id('signal')}'")
    assert state(page)["path"] == _path(lantern, "harbor", "signal") and events(page, "shot") == []


# ------------------------------------------------------------------ story so far


def test_story_so_far_lists_the_captions_shown_in_order(page: Page, bundles: Bundles) -> None:
    captioned = bundles.captioned
    open_bundle(page, captioned, speed=REAL_TIME)
    page.keyboard.press("Enter")
    _at(page, captioned, "root", 0)
    page.click("#history-button")  # by click: only the first shot's lines so far
    wait_for(page, "s.history && s.paused")
    first = [f"{speaker}: {line}" for speaker, line in LONG_NARRATION]
    assert _history(page) == first
    assert page.get_by_role("dialog", name="Story so far").is_visible()
    assert page.evaluate("document.activeElement.id") == "history-list"
    assert page.locator("#history-button").get_attribute("aria-expanded") == "true"
    page.keyboard.press("ArrowRight")  # keys act on the panel, not on the story behind it
    assert state(page)["shotPosition"] == 0
    page.keyboard.press("Escape")
    wait_for(page, "!s.history && !s.paused")
    assert page.evaluate("document.activeElement.id") == "history-button"  # focus back where it was

    page.keyboard.press("ArrowRight")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("1")  # the lit path: no lines, so its description (once for its two shots)
    wait_for(page, "s.screen === 'terminal'")
    page.set_viewport_size({"width": 1280, "height": 480})  # more lines than the panel shows
    page.keyboard.press("l")
    wait_for(page, "s.history")
    seen = [*first, "narrator: Choose.", "You chose: Take the lit path", "The lit path."]
    assert _history(page) == seen
    # newest last, scrolled into view
    scroll = page.locator("#history-list").evaluate("(l) => [l.scrollTop, l.clientHeight, l.scrollHeight]")
    assert scroll[2] > scroll[1] and scroll[0] + scroll[1] >= scroll[2] - 1, scroll
    page.keyboard.press("l")  # the same key closes it
    wait_for(page, "!s.history")
    assert page.locator("#history-screen").is_hidden()
    assert page.evaluate("document.activeElement.id") == "terminal-heading"

    page.keyboard.press("ArrowLeft")  # stepped back: the list ends where the viewer is
    wait_for(page, "s.screen === 'playing'")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("l")
    wait_for(page, "s.history")
    assert _history(page) == [*first, "narrator: Choose."]


def test_story_so_far_renders_story_text_as_text(page: Page, bundles: Bundles) -> None:
    hostile = bundles.hostile
    open_bundle(page, hostile)
    page.keyboard.press("Enter")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("2")
    wait_for(page, "s.screen === 'terminal'")
    page.keyboard.press("l")
    wait_for(page, "s.history")
    assert _history(page) == [
        f"Caption {XSS_SCRIPT} {XSS_IMG}",
        f"You chose: Label {XSS_IMG}",
        f"{XSS_IMG}: Line {XSS_SCRIPT} {XSS_IMG}",
    ]
    assert page.locator("#history-list img, #history-list script").count() == 0
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None


def test_story_so_far_is_accessible_on_a_phone(new_page: Callable[..., Page], bundles: Bundles) -> None:
    page = new_page(viewport={"width": 390, "height": 844}, has_touch=True, bypass_csp=True)  # axe is injected
    lantern = bundles.lantern
    open_bundle(page, lantern)
    page.click("#start-button")
    pause_when(page, f"s.sceneletId === '{lantern.story.id('signal')}'", via="button")
    previous, history = page.get_by_role("button", name="Previous shot"), page.get_by_role("button", name="History")
    assert previous.is_visible() and history.is_visible()
    short = previous.locator(".control__short").bounding_box()
    assert short is not None and short["width"] >= 15 and previous.locator(".control__short").inner_text() == "Prev"
    full = previous.locator(".control__more").bounding_box()
    assert full is not None and full["width"] <= 1  # "Previous shot" stays its name, not its label
    assert history.locator(".control__label").inner_text() == "History"
    page.get_by_role("button", name="History").click()
    wait_for(page, "s.history")
    assert _history(page) == [lantern.scenelet(key)["description"] for key in ("harbor", "signal")]
    # readable: light text on the panel's opaque background
    colours = page.locator("#history-list li").first.evaluate(
        "(li) => [getComputedStyle(li).color, getComputedStyle(li.closest('.history__inner')).backgroundColor]"
    )
    assert colours == ["rgb(185, 177, 165)", "rgb(12, 14, 20)"]  # about 9:1
    results = Axe().run(page, options={"resultTypes": ["violations"]})
    assert [v["id"] for v in results.response["violations"]] == []
    page.get_by_role("button", name="Close").click()
    wait_for(page, "!s.history && s.paused")  # it was paused before: it stays paused
    assert page.evaluate("document.activeElement.id") == "history-button"
