"""Chromium opens what the web profile's encoders write: the WebP key frame draws, the M4A narration loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from bundler.media.encode import WebSettings, encode_key_frame, encode_narration
from tests.media_synth import art_png, speech_wav

pytestmark = pytest.mark.browser


def test_chromium_draws_the_webp_and_loads_the_m4a(page: Page, tmp_path: Path) -> None:
    (tmp_path / "1_key_frame.webp").write_bytes(encode_key_frame(art_png(320, 180, seed=3), WebSettings()))
    (tmp_path / "1_audio.m4a").write_bytes(encode_narration(speech_wav("Far out, a light answered."), WebSettings()))
    (tmp_path / "index.html").write_text(
        '<img id="frame" src="1_key_frame.webp"><audio id="voice" preload="auto" src="1_audio.m4a"></audio>',
        encoding="utf-8",
    )
    page.goto((tmp_path / "index.html").as_uri())
    page.wait_for_function("document.getElementById('frame').complete")
    assert page.evaluate("document.getElementById('frame').naturalWidth") == 320
    page.wait_for_function(
        "(() => { const a = document.getElementById('voice'); return a.readyState >= 2 || a.error; })()"
    )
    state = page.evaluate("(() => { const a = document.getElementById('voice'); return [a.error, a.duration]; })()")
    assert state[0] is None
    assert 1.0 < state[1] < 3.0
