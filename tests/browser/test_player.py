"""The offline player in a real Chromium, on bundles assembled from a real database.

Every page is opened straight from disk (``file://``) with ``?speed=N`` so the
pacing waits shrink; narration clips are a quarter of a second. The page's
``window.__player`` hook reports its state and an event log, which is what
the assertions read besides the DOM.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, ViewportSize

from tests.browser.bundles import (
    Bundles,
    assert_no_csp_violations,
    events,
    open_bundle,
    pause_when,
    shot,
    state,
    wait_for,
    wait_for_choice_images,
)
from tests.browser.stories import HOSTILE, LANTERN, XSS_CUE, XSS_IMG, XSS_SCRIPT

pytestmark = pytest.mark.browser

# ------------------------------------------------------------------ tests


def test_start_screen_waits_for_start_then_shows_a_shot(page: Page, bundles: Bundles, screenshot_dir: Path) -> None:
    lantern = bundles.lantern
    open_bundle(page, lantern, speed=1)  # real pacing, for a settled screenshot
    assert page.locator("#start-title").text_content() == "The Lantern Keeper"
    assert page.title() == "The Lantern Keeper"
    assert page.locator("#start-button").is_visible()
    assert page.evaluate("document.activeElement.id") == "start-button"
    page.wait_for_function("() => document.querySelector('.frame.is-visible') !== null")
    assert page.locator(".frame.is-visible").get_attribute("src") == lantern.first_image("harbor")

    page.wait_for_timeout(600)  # nothing starts on its own (the lead-in alone is 700 ms)
    current = state(page)
    assert current["screen"] == "start" and current["sceneletId"] is None
    assert current["musicCue"] is None and not current["musicPlaying"]
    assert [e["type"] for e in events(page)] == []
    assert page.evaluate("[...document.querySelectorAll('audio')].length") == 0
    shot(page, screenshot_dir, "start-screen.png")

    page.click("#start-button")
    wait_for(page, f"s.screen === 'playing' && s.sceneletId === '{lantern.story.id('harbor')}'")
    wait_for(page, "s.image === 'loaded' && s.phase === 'narration'")
    assert page.locator("#caption").text_content() == LANTERN.scenes[0].description
    assert page.locator("#caption").is_visible()
    assert page.locator("#topbar-title").text_content() == "The Lantern Keeper"
    shot(page, screenshot_dir, "shot.png")
    assert_no_csp_violations(page)


def test_linear_branch_terminal_and_start_over(page: Page, bundles: Bundles, screenshot_dir: Path) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern)
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")

    # linear: both root shots, then the linked scenelet, in order and on their own
    shots = [(e["sceneletId"], e["shotIndex"]) for e in events(page, "shot")]
    assert shots == [(ids["harbor"], 1), (ids["harbor"], 2), (ids["signal"], 1)]
    log = events(page)
    kinds = [e["type"] for e in log]
    # each narrated shot: frame first, narration after the lead-in, advance after it ends
    assert kinds.count("narration-start") == 2 and kinds.count("narration-end") == 2
    first_shot, first_narration = log[kinds.index("shot")], log[kinds.index("narration-start")]
    assert first_narration["t"] >= first_shot["t"]
    # the signal shot has no narration: it was held, then the story moved on
    assert events(page, "narration-none") == [
        {
            "type": "narration-none",
            "sceneletId": ids["signal"],
            "shotIndex": 1,
            "t": events(page, "narration-none")[0]["t"],
        }
    ]

    # the overlay: prompt, labels and thumbnails in script order
    assert page.locator("#choice-prompt").text_content() == "Where should Mira go?"
    labels = page.locator("#choice-list .choice__label").all_text_contents()
    assert labels == ["Climb the lighthouse", "Row out to the light"]
    thumbs = page.locator("#choice-list img").evaluate_all("(imgs) => imgs.map((i) => i.getAttribute('src'))")
    assert thumbs == [lantern.first_image("tower"), lantern.first_image("boat")]
    # focus is on the prompt, not on a card that would look chosen
    assert page.evaluate("document.activeElement.id") == "choice-prompt"

    # music: one cue for both scenelets (never restarted), still playing during the choice
    assert [e["cue"] for e in events(page, "music")] == ["Harbor Night"]
    current = state(page)
    assert current["musicCue"] == "Harbor Night" and current["musicPlaying"]
    page.wait_for_function("() => window.__player.events().some((e) => e.type === 'branch-narration')")

    wait_for_choice_images(page)
    shot(page, screenshot_dir, "choice-overlay.png")

    page.locator("#choice-list .choice").first.click()
    wait_for(page, "s.screen === 'terminal'")
    assert events(page, "chosen")[0]["sceneletId"] == ids["tower"]
    assert [e["cue"] for e in events(page, "music")] == ["Harbor Night", "Lighthouse"]  # cross-faded on change
    wait_for(page, "s.musicCue === null && !s.musicPlaying")  # and stopped at the end

    shot(page, screenshot_dir, "terminal.png")
    restart = page.locator("#restart-button")
    assert restart.is_visible() and restart.text_content().strip() == "Start Over"  # type: ignore[union-attr]
    assert page.evaluate("document.activeElement.id") == "terminal-heading"
    restart.click()
    wait_for(page, "s.screen === 'start' && s.sceneletId === null")
    assert page.locator("#start-screen").is_visible() and not page.locator("#terminal-screen").is_visible()
    page.wait_for_timeout(300)
    assert state(page)["screen"] == "start"  # back at the title, nothing playing
    assert_no_csp_violations(page)


def test_incomplete_path_by_keyboard_and_broken_music(page: Page, bundles: Bundles, screenshot_dir: Path) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern)
    page.keyboard.press("Enter")  # the Start button has focus
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused.endswith("Row out to the light")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # keyboard focus is visible
    page.keyboard.press("Enter")

    wait_for(page, "s.screen === 'incomplete'")
    assert [e["sceneletId"] for e in events(page, "scenelet")][-2:] == [ids["boat"], ids["open-water"]]
    # the boat's cue cannot be decoded: skipped silently, the story went on
    assert [e["cue"] for e in events(page, "music-failed")] == ["Broken Cue"]
    screen = page.locator("#incomplete-screen")
    assert "still being written" in (screen.text_content() or "")
    assert not page.locator("#restart-button").is_visible()
    assert page.get_by_role("button", name="Start Over").count() == 0
    shot(page, screenshot_dir, "incomplete.png")
    back = page.locator("#incomplete-back")
    assert back.is_visible()
    back.click()
    wait_for(page, "s.screen === 'start'")


def test_pause_and_resume_hold_the_story(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern)
    page.click("#start-button")

    # pause during narration (space bar)
    pause_when(page, "s.shotIndex === 1 && s.phase === 'narration'", via="key")
    paused = state(page)
    assert paused["paused"] and paused["shotIndex"] == 1
    assert page.locator("#pause-button").get_attribute("aria-pressed") == "true"
    assert page.locator("#paused-badge").is_visible()
    assert page.locator("#icon-play").is_visible() and not page.locator("#icon-pause").is_visible()
    assert page.locator("#pause-button").text_content().strip() == "Resume"  # type: ignore[union-attr]
    page.wait_for_timeout(500)  # longer than the rest of the shot
    assert state(page)["shotIndex"] == 1 and state(page)["sceneletId"] == ids["harbor"]
    assert not state(page)["musicPlaying"]
    page.keyboard.press("Space")
    assert not state(page)["paused"]
    wait_for(page, "s.shotIndex === 2")

    # pause during a held shot (button): the remaining hold time is kept
    pause_when(page, f"s.sceneletId === '{ids['signal']}' && s.phase === 'hold'", via="button")
    page.wait_for_timeout(400)  # 2.5x the whole hold at this speed
    assert state(page)["screen"] == "playing" and state(page)["phase"] == "hold"
    page.click("#pause-button")
    wait_for(page, "s.screen === 'choice' && !s.paused")

    # the choice screen pauses too (music, branch narration), with real key presses
    assert page.evaluate("document.activeElement.id") == "choice-prompt"  # not a button: Space pauses
    page.keyboard.press("Space")
    assert state(page)["paused"] and not state(page)["musicPlaying"]
    page.keyboard.press("Space")
    wait_for(page, "!s.paused && s.musicPlaying")

    # number keys pick a choice
    page.keyboard.press("2")
    wait_for(page, f"s.sceneletId === '{ids['boat']}'")
    wait_for(page, "s.screen === 'incomplete'")


def test_missing_and_broken_media_never_stop_playback(page: Page, bundles: Bundles, screenshot_dir: Path) -> None:
    damaged = bundles.damaged
    shots = damaged.scenelet("root")["shots"]
    assert shots[0]["imagePath"] is None  # the key frame file was missing at assembly
    assert shots[4]["audioPath"] is None
    # the browser refuses to play one clip: a play() rejection must not stall the story
    rejected = shots[3]["audioPath"]
    page.add_init_script(
        "const play = HTMLMediaElement.prototype.play;"
        "HTMLMediaElement.prototype.play = function () {"
        f"  if ((this.currentSrc || this.src).endsWith({json.dumps(rejected)}))"
        "    return Promise.reject(new DOMException('blocked by test', 'NotAllowedError'));"
        "  return play.call(this);"
        "};"
    )
    open_bundle(page, damaged)
    # the title screen's key frame (shot 2's, the first one listed) is gone: placeholder
    wait_for(page, "s.image === 'error'")
    assert page.locator("#placeholder").is_visible()
    assert not page.locator(".placeholder__text").is_visible()  # a title card, not an error message
    page.click("#start-button")

    wait_for(page, "s.shotIndex === 1 && s.image === 'none'")
    assert page.locator("#placeholder").is_visible() and page.locator(".placeholder__text").is_visible()
    pause_when(page, "s.shotIndex === 2 && s.image === 'error'", via="key")
    assert page.locator("#placeholder").is_visible()
    shot(page, screenshot_dir, "missing-image.png")
    page.keyboard.press("Space")

    wait_for(page, "s.screen === 'terminal'")
    assert [e["shotIndex"] for e in events(page, "shot")] == [1, 2, 3, 4, 5]
    log = events(page)
    after_start = log[[e["type"] for e in log].index("start") :]
    assert [e["path"] for e in after_start if e["type"] == "image-error"] == [shots[1]["imagePath"]]
    skipped = {e["shotIndex"]: e["reason"] for e in events(page, "narration-skipped")}
    assert skipped == {3: "error", 4: "play-rejected:NotAllowedError"}
    assert [e["shotIndex"] for e in events(page, "narration-none")] == [5]
    assert [e["shotIndex"] for e in events(page, "narration-end")] == [1, 2]


def test_story_text_is_never_markup(page: Page, bundles: Bundles) -> None:
    hostile = bundles.hostile
    html = (hostile.path / "index.html").read_text(encoding="utf-8")
    assert html.count("</script>") == 2  # the data block and the player, nothing injected
    open_bundle(page, hostile)
    title = HOSTILE.title
    assert page.locator("#start-title").evaluate("(e) => e.textContent") == title
    assert XSS_SCRIPT in page.title()
    page.click("#start-button")
    wait_for(page, "s.screen === 'playing' && s.musicCue !== null")
    assert page.locator("#cue-name").text_content() == XSS_CUE
    assert XSS_SCRIPT in (page.locator("#caption").text_content() or "")
    wait_for(page, "s.screen === 'choice'")
    prompt = page.locator("#choice-prompt").text_content()
    assert prompt == f"Prompt {XSS_SCRIPT} {XSS_IMG}"
    labels = page.locator("#choice-list .choice__label").all_text_contents()
    assert labels == [f"Label {XSS_SCRIPT}", f"Label {XSS_IMG}"]
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("document.scripts.length") == 2
    # only the player's own images: frames, backdrop and the two thumbnails
    sources = page.evaluate("[...document.images].map((i) => i.getAttribute('src') || '')")
    assert all(src == "" or src.startswith("assets/") for src in sources)
    assert_no_csp_violations(page)


def test_plays_with_no_network(new_page: Callable[..., Page], bundles: Bundles) -> None:
    lantern = bundles.lantern
    page = new_page(offline=True)
    blocked: list[str] = []
    requested: list[str] = []

    def gate(route: Route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", gate)
    page.on("request", lambda request: requested.append(request.url))
    open_bundle(page, lantern)
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("1")
    wait_for(page, "s.screen === 'terminal'")
    assert blocked == []
    assert [url for url in requested if not url.startswith("file:")] == []
    # and the media really came from the bundle folder
    assert any(url.endswith("_audio.wav") for url in requested)
    assert any(url.endswith("_key_frame.png") for url in requested)
    assert any(url.endswith(".m4a") for url in requested)
    assert_no_csp_violations(page)


def test_phone_viewport(new_page: Callable[..., Page], bundles: Bundles, screenshot_dir: Path) -> None:
    phone: ViewportSize = {"width": 360, "height": 640}
    page = new_page(viewport=phone, device_scale_factor=2, has_touch=True)
    open_bundle(page, bundles.lantern)
    start = page.locator("#start-button").bounding_box()
    assert start is not None and start["x"] >= 0 and start["x"] + start["width"] <= 360
    shot(page, screenshot_dir, "phone-start.png")
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")
    wait_for_choice_images(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for box in page.locator("#choice-list .choice").evaluate_all(
        "(els) => els.map((e) => e.getBoundingClientRect().toJSON())"
    ):
        assert box["left"] >= 0 and box["right"] <= 360 and box["bottom"] <= 640
        assert box["height"] >= 44  # comfortable touch target
    shot(page, screenshot_dir, "phone-choice.png")
    page.locator("#choice-list .choice").nth(0).tap()
    wait_for(page, "s.screen === 'terminal'")
    box = page.locator("#restart-button").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 360


def test_strict_csp_is_in_force(page: Page, bundles: Bundles) -> None:
    """The policy runs the player under file:// by hash, and refuses any other script."""
    lantern = bundles.lantern
    html = (lantern.path / "index.html").read_text(encoding="utf-8")
    open_bundle(page, lantern)
    policy = page.locator("meta[http-equiv='Content-Security-Policy']").get_attribute("content") or ""
    assert "default-src 'none'" in policy and "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert page.evaluate("typeof window.__player.state") == "function"  # our script ran
    # a script added later (as an injection would) is blocked
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 4';"
        " document.body.append(s); }"
    )
    assert page.evaluate("window.__pwned") is None
    assert any(v.startswith("script-src") for v in page.evaluate("window.__cspViolations"))
    assert "<script>" in html


def test_unreadable_story_data_shows_an_error(page: Page, bundles: Bundles, tmp_path: Path) -> None:
    broken = tmp_path / "index.html"
    html = (bundles.lantern.path / "index.html").read_text(encoding="utf-8")
    start = html.index('<script id="story-manifest" type="application/json">') + len(
        '<script id="story-manifest" type="application/json">'
    )
    end = html.index("</script>", start)
    broken.write_text(html[:start] + "{not json" + html[end:], encoding="utf-8")
    page.goto(broken.as_uri())
    page.wait_for_function("() => window.__player.state().screen === 'error'")
    assert page.locator("#error-screen").is_visible()
    assert not page.locator("#start-button").is_visible()
