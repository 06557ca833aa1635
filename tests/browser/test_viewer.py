"""What viewers keep (issue 10): going back, saved progress, full captions that
stay readable, sound that recovers, any file name, keyboard-only play and an
axe-core audit; in a real Chromium, on bundles from the real database (file://)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.bundles import (
    Bundle,
    Bundles,
    events,
    open_bundle,
    pause_when,
    state,
    wait_for,
    wait_for_choice_images,
)
from tests.browser.stories import HASH_CUE, LONG_NARRATION

pytestmark = pytest.mark.browser

REFUSE_SOUND = """
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  if (!window.__allowSound) return Promise.reject(new DOMException('refused by the test', 'NotAllowedError'));
  return play.call(this);
};
"""
NO_STORAGE = """
Object.defineProperty(window, 'localStorage', {
  get() { throw new DOMException('storage is off', 'SecurityError'); },
});
"""


def back_to_choice(page: Page) -> None:
    page.get_by_role("button", name="Back to last choice").click()
    wait_for(page, "s.screen === 'choice'")


# ------------------------------------------------------------------ going back


def test_back_to_last_choice_from_both_endings_and_during_play(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern)
    page.click("#start-button")
    wait_for(page, "s.screen === 'playing'")
    assert not state(page)["canGoBack"] and not page.locator("#back-button").is_visible()  # no choice yet
    assert page.locator("#progress").text_content() == "Scene 1 of this path"
    wait_for(page, "s.screen === 'choice'")

    page.keyboard.press("1")
    wait_for(page, "s.screen === 'terminal'")  # a terminal ending
    back_to_choice(page)
    assert state(page)["sceneletId"] == ids["signal"] and state(page)["path"] == [ids["harbor"], ids["signal"]]
    assert page.locator("#choice-prompt").text_content() == "Where should Mira go?"

    page.keyboard.press("2")
    pause_when(page, f"s.sceneletId === '{ids['boat']}'", via="button")  # during play: the control
    assert page.locator("#back-button").is_visible()
    assert page.locator("#progress").text_content() == "Scene 3 of this path"
    assert page.locator("#cue").evaluate("(c) => c.closest('header, main, nav') !== null")  # inside a landmark
    page.click("#back-button")
    wait_for(page, f"s.screen === 'choice' && !s.paused && s.sceneletId === '{ids['signal']}'")

    page.keyboard.press("2")
    wait_for(page, "s.screen === 'incomplete'")  # an ending still being written
    assert state(page)["path"] == [ids["harbor"], ids["signal"], ids["boat"], ids["open-water"]]
    back_to_choice(page)
    assert state(page)["path"] == [ids["harbor"], ids["signal"]]

    page.keyboard.press("2")
    wait_for(page, f"s.sceneletId === '{ids['boat']}'")
    page.keyboard.press("b")  # and the key
    wait_for(page, f"s.screen === 'choice' && s.sceneletId === '{ids['signal']}'")
    assert [e["sceneletId"] for e in events(page, "back")] == [ids["signal"]] * 4


def test_leaving_asks_first_and_a_reopened_page_continues(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern)
    assert not page.locator("#continue-button").is_visible()  # nothing saved yet
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")

    page.click("#home-button")
    assert page.locator("#confirm-screen").is_visible()
    assert state(page)["confirming"] and state(page)["paused"] and state(page)["screen"] == "choice"
    assert page.evaluate("document.activeElement.id") == "confirm-stay"
    page.click("#confirm-stay")  # Keep watching: back where the viewer was, playing again
    wait_for(page, "!s.confirming && !s.paused && s.screen === 'choice'")
    page.click("#home-button")
    page.keyboard.press("Escape")  # Escape keeps watching too
    wait_for(page, "!s.confirming && !s.paused && s.screen === 'choice'")

    page.keyboard.press("2")
    pause_when(page, f"s.sceneletId === '{ids['boat']}'", via="button")
    page.click("#home-button")
    page.click("#confirm-leave")
    wait_for(page, "s.screen === 'start'")
    assert page.locator("#continue-button").is_visible()

    page.reload()
    page.wait_for_function("() => window.__player.state().screen === 'start'")
    assert page.evaluate("document.activeElement.id") == "continue-button"
    assert page.locator("#start-button").text_content().strip() == "Start from the beginning"  # type: ignore[union-attr]
    page.click("#continue-button")
    wait_for(page, f"s.screen === 'playing' && s.sceneletId === '{ids['boat']}'")
    assert state(page)["path"] == [ids["harbor"], ids["signal"], ids["boat"]]
    page.keyboard.press("b")  # the history came back too
    wait_for(page, f"s.screen === 'choice' && s.sceneletId === '{ids['signal']}'")


def test_plays_without_storage(new_page: Callable[..., Page], bundles: Bundles) -> None:
    page = new_page()
    page.add_init_script(NO_STORAGE)
    open_bundle(page, bundles.lantern)
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("1")
    wait_for(page, "s.screen === 'terminal'")
    page.click("#restart-button")
    wait_for(page, "s.screen === 'start'")
    assert not page.locator("#continue-button").is_visible()  # and no uncaught error (fixture)


# ------------------------------------------------------------------ captions


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 360, "height": 740}])
def test_captions_show_every_line_of_a_long_narration(
    new_page: Callable[..., Page], bundles: Bundles, viewport: ViewportSize
) -> None:
    page = new_page(viewport=viewport)
    open_bundle(page, bundles.captioned)
    page.click("#start-button")
    pause_when(page, "s.shotIndex === 1 && s.image === 'loaded'", via="key")
    caption = page.locator("#caption")
    expect(caption).to_be_visible()
    got = page.locator("#caption .caption__line").evaluate_all(
        "(ps) => ps.map((p) => [p.querySelector('.caption__speaker')?.textContent ?? '',"
        " p.querySelector('.caption__text').textContent])"
    )
    assert [tuple(line) for line in got] == list(LONG_NARRATION)
    style = caption.evaluate("(c) => { const s = getComputedStyle(c); return [s.webkitLineClamp, s.textOverflow]; }")
    assert style == ["none", "clip"]  # nothing cut with an ellipsis
    # every line can be brought fully into view inside the caption, inside the window
    for n in range(len(LONG_NARRATION)):
        line = page.locator("#caption .caption__line").nth(n)
        line.evaluate("(p) => p.scrollIntoView({block: 'nearest'})")
        box, frame = line.bounding_box(), caption.bounding_box()
        assert box is not None and frame is not None
        assert box["y"] >= frame["y"] - 1 and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]
    if page.evaluate(
        "(() => { const c = document.getElementById('caption'); return c.scrollHeight > c.clientHeight; })()"
    ):
        assert caption.get_attribute("tabindex") == "0"  # a scrolling caption is reachable by keyboard

    page.keyboard.press("c")
    expect(caption).to_be_hidden()
    assert not state(page)["captions"]
    page.keyboard.press("c")
    expect(caption).to_be_visible()


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return r, g, b


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_caption_contrast_over_a_white_key_frame(page: Page, browser: Browser, bundles: Bundles) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    open_bundle(page, bundles.captioned)
    page.click("#start-button")
    pause_when(page, "s.shotIndex === 1 && s.image === 'loaded'", via="key")
    assert page.locator(".frame.is-visible").evaluate("(i) => i.naturalWidth") > 0
    colors = page.evaluate(
        "[...document.querySelectorAll('#caption .caption__text, #caption .caption__speaker')]"
        ".map((e) => getComputedStyle(e).color)"
    )
    # photograph the backing alone: the text made transparent, the rounded corners left out
    page.evaluate("document.querySelectorAll('#caption *').forEach((e) => { e.style.color = 'transparent'; })")
    box = page.locator("#caption").bounding_box()
    assert box is not None
    inset = 14
    clip = {"x": box["x"] + inset, "y": box["y"] + inset, "width": box["width"] - 2 * inset}
    picture = page.screenshot(clip={**clip, "height": box["height"] - 2 * inset})
    # decode the pixels in a blank page (the player's CSP admits no data: images)
    decoder = browser.new_page()
    try:
        brightest = decoder.evaluate(
            """async (src) => {
                const img = new Image(); img.src = src; await img.decode();
                const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
                const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                const d = g.getImageData(0, 0, c.width, c.height).data;
                let best = [0, 0, 0], top = -1;
                for (let i = 0; i < d.length; i += 4) {
                    const l = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
                    if (l > top) { top = l; best = [d[i], d[i + 1], d[i + 2]]; }
                }
                return best;
            }""",
            "data:image/png;base64," + base64.b64encode(picture).decode(),
        )
    finally:
        decoder.close()
    background = (brightest[0], brightest[1], brightest[2])
    assert _luminance(background) < 0.1  # the backing really is dark over the white frame
    ratios = [_contrast(_rgb(color), background) for color in set(colors)]
    assert min(ratios) >= 4.5, (colors, background, ratios)


# ------------------------------------------------------------------ sound


def test_refused_sound_shows_a_prompt_and_a_click_recovers(new_page: Callable[..., Page], bundles: Bundles) -> None:
    page = new_page()
    page.add_init_script(REFUSE_SOUND)
    open_bundle(page, bundles.lantern, speed=2)  # shots held for 2 s while the narration is refused
    page.click("#start-button")
    wait_for(page, "s.soundBlocked && s.phase === 'hold'")
    prompt = page.get_by_role("button", name="Tap to enable sound")
    assert prompt.is_visible()
    assert not state(page)["musicPlaying"]
    assert {e["what"] for e in events(page, "sound-refused")} >= {"narration"}

    page.evaluate("window.__allowSound = true")  # what the next gesture allows in a real browser
    prompt.click()
    wait_for(page, "!s.soundBlocked && s.musicPlaying && s.musicCue === 'Harbor Night'")
    assert not prompt.is_visible()
    retried_at = events(page, "sound-retry")[0]["t"]
    page.wait_for_function(
        f"() => window.__player.events().some((e) => e.type === 'narration-end' && e.t >= {retried_at})"
    )
    assert state(page)["screen"] == "playing"


def test_a_cue_that_failed_is_tried_again_on_the_next_scene(new_page: Callable[..., Page], bundles: Bundles) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    page = new_page()
    page.add_init_script(
        "const play = HTMLMediaElement.prototype.play; window.__failMusic = true;"
        "HTMLMediaElement.prototype.play = function () {"
        "  if (window.__failMusic && (this.currentSrc || this.src).endsWith('.m4a'))"
        "    return Promise.reject(new DOMException('no decoder today', 'NotSupportedError'));"
        "  return play.call(this);"
        "};"
    )
    open_bundle(page, lantern, speed=5)
    page.click("#start-button")
    page.wait_for_function("() => window.__player.events().some((e) => e.type === 'music-failed')")
    assert state(page)["sceneletId"] == ids["harbor"] and not state(page)["musicPlaying"]
    assert not state(page)["soundBlocked"]  # a broken cue is no autoplay refusal
    page.evaluate("window.__failMusic = false")
    # the signal scene shares the cue: tried again there, and it plays
    wait_for(page, f"s.sceneletId === '{ids['signal']}' && s.musicCue === 'Harbor Night' && s.musicPlaying")
    assert [e["cue"] for e in events(page, "music")] == ["Harbor Night", "Harbor Night"]


def test_a_cue_whose_name_needs_encoding_plays(page: Page, bundles: Bundles) -> None:
    captioned = bundles.captioned
    (cue,) = captioned.manifest["music"]["cues"]
    assert cue["cueName"] == HASH_CUE and (captioned.path / cue["audioPath"]).is_file()
    assert " " in cue["audioPath"]  # whatever the file-name rules make of '#', the space needs encoding
    open_bundle(page, captioned)
    page.click("#start-button")
    wait_for(page, f"s.musicCue === {HASH_CUE!r} && s.musicPlaying")
    assert events(page, "music-failed") == []
    music_url = state(page)["musicUrl"]
    assert music_url.startswith("file://") and music_url.endswith(".m4a")
    assert " " not in music_url and "%20" in music_url and "#" not in music_url


def test_choice_thumbnail_falls_back_to_an_image_that_loads(page: Page, bundles: Bundles) -> None:
    captioned = bundles.captioned
    open_bundle(page, captioned)
    page.click("#start-button")
    wait_for(page, "s.screen === 'choice'")
    wait_for_choice_images(page)
    page.wait_for_function("() => document.querySelector('#choice-list img').naturalWidth > 0")
    lit_images = [s["imagePath"] for s in captioned.scenelet("lit")["shots"]]
    assert page.locator("#choice-list img").evaluate_all("(imgs) => imgs.map((i) => i.getAttribute('src'))") == [
        lit_images[1]
    ]
    thumbs = page.locator("#choice-list .choice__thumb")
    assert thumbs.nth(1).get_attribute("class") == "choice__thumb is-missing"  # the dark path has no key frame


# ------------------------------------------------------------------ keyboard


def test_keyboard_only_play_through(page: Page, bundles: Bundles) -> None:
    lantern = bundles.lantern
    ids = lantern.story.ids
    open_bundle(page, lantern, speed=4)
    assert page.evaluate("document.activeElement.id") == "start-button"
    page.keyboard.press("Enter")
    wait_for(page, "s.screen === 'playing'")
    assert page.evaluate("document.activeElement.id") == "story"  # focus went to the story

    page.keyboard.press("m")
    assert state(page)["muted"] and page.locator("#mute-button").get_attribute("aria-pressed") == "true"
    page.keyboard.press("c")
    assert not state(page)["captions"]
    page.keyboard.press("c")
    assert state(page)["captions"]
    page.keyboard.press("Space")  # not on a button: pause
    assert state(page)["paused"] and page.locator("#paused-badge").is_visible()
    # the badge shows what the next press does (play), and the push-in waits too
    assert page.locator("#paused-badge path").get_attribute("d") == page.locator("#icon-play path").get_attribute("d")
    assert page.locator(".frame.is-visible").evaluate("(f) => getComputedStyle(f).animationPlayState") == "paused"
    page.keyboard.press("Space")
    assert not state(page)["paused"]

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "pause-button"
    page.keyboard.press("Space")  # on a button: Space presses it
    assert state(page)["paused"]
    page.keyboard.press("Space")
    assert not state(page)["paused"]
    page.keyboard.press("ArrowRight")
    assert events(page, "next-shot")[0]["sceneletId"] == ids["harbor"]

    wait_for(page, "s.screen === 'choice'")
    assert page.evaluate("document.activeElement.id") == "choice-prompt"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.matches('.choice:focus-visible')")
    page.keyboard.press("Space")  # on a focused choice: that choice
    wait_for(page, "s.screen === 'terminal'")
    assert events(page, "chosen")[-1]["sceneletId"] == ids["tower"]

    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "terminal-back"
    page.keyboard.press("Enter")
    wait_for(page, "s.screen === 'choice'")
    page.keyboard.press("2")
    wait_for(page, "s.screen === 'incomplete'")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "incomplete-back"
    page.keyboard.press("Enter")
    wait_for(page, "s.screen === 'start'")
    assert page.evaluate("document.activeElement.id") == "continue-button"


# ------------------------------------------------------------------ accessibility


def _audit(page: Page, where: str) -> None:
    results = Axe().run(page, options={"resultTypes": ["violations"]})
    found = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]]) for v in results.response["violations"]]
    assert found == [], f"axe violations on the {where} screen: {found}"


def test_axe_finds_no_violations(new_page: Callable[..., Page], bundles: Bundles) -> None:
    page = new_page(bypass_csp=True)  # axe is injected as a script
    lantern: Bundle = bundles.lantern
    open_bundle(page, lantern)
    _audit(page, "start")
    page.click("#start-button")
    pause_when(page, "s.screen === 'playing' && s.image === 'loaded'", via="button")
    _audit(page, "shot")
    page.click("#pause-button")
    wait_for(page, "s.screen === 'choice'")
    wait_for_choice_images(page)
    _audit(page, "choice")
    page.click("#home-button")
    _audit(page, "leave confirmation")
    page.click("#confirm-stay")
    page.keyboard.press("1")
    wait_for(page, "s.screen === 'terminal'")
    _audit(page, "terminal ending")
    back_to_choice(page)
    page.keyboard.press("2")
    wait_for(page, "s.screen === 'incomplete'")
    _audit(page, "incomplete ending")
