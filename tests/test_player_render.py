"""``render_player``: the manifest is embedded safely, the page is deterministic,
and the CSP hashes match the inline code they allow."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bundler.player import embed_json, render_player

DATA_BLOCK = re.compile(r'<script id="story-manifest" type="application/json">(.*?)</script>', re.S)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')

HOSTILE = "</script><script>window.__pwned=1</script> <!-- <img src=x onerror=alert(1)> & \u2028\u2029 </SCRIPT >"


def manifest(title: str = "A Story", prompt: str = "Which way?", label: str = "Left") -> dict[str, Any]:
    root = "11111111-1111-4111-8111-111111111111"
    left = "22222222-2222-4222-8222-222222222222"
    right = "33333333-3333-4333-8333-333333333333"
    return {
        "format": "story-bundle",
        "formatVersion": 1,
        "generator": "bundler test",
        "metadata": {
            "storyId": "44444444-4444-4444-8444-444444444444",
            "title": title,
            "exportedAt": "2026-01-01T00:00:00Z",
        },
        "rootSceneletId": root,
        "scenelets": [
            {
                "id": root,
                "label": "scenelet-1",
                "description": f"About {title}",
                "shots": [{"shotIndex": 1, "imagePath": f"assets/shots/{root}/1_key_frame.png", "audioPath": None}],
                "next": {
                    "type": "branch",
                    "choicePrompt": prompt,
                    "choices": [{"sceneletId": left, "label": label}, {"sceneletId": right, "label": "Right"}],
                },
                "branchAudioPath": None,
            },
            *(
                {
                    "id": uid,
                    "label": f"scenelet-{n}",
                    "description": "End",
                    "shots": [{"shotIndex": 1, "imagePath": None, "audioPath": f"assets/shots/{uid}/1_audio.wav"}],
                    "next": {"type": "terminal"},
                    "branchAudioPath": None,
                }
                for n, uid in ((2, left), (3, right))
            ),
        ],
        "music": {
            "cues": [{"cueName": title, "sceneletIds": [root], "audioPath": "assets/music/x.m4a"}],
            "sceneletCueMap": {root: title},
        },
        "files": [],
    }


def data_block(page: str) -> str:
    (block,) = DATA_BLOCK.findall(page)
    return block  # type: ignore[no-any-return]


def test_hostile_text_cannot_leave_the_data_block() -> None:
    story = manifest(HOSTILE, HOSTILE, HOSTILE)
    page = render_player(story)
    block = data_block(page)
    for char in "<>&\u2028\u2029":
        assert char not in block
    assert "\\u003c/script\\u003e" in block and "\\u2028" in block
    assert json.loads(block) == story
    # the data block and the player: no other script element was opened or closed
    assert page.lower().count("<script") == 2 and page.lower().count("</script") == 2
    outside = re.sub(r"<title>.*?</title>", "", page.replace(block, ""), flags=re.S)  # title is escaped text
    assert "__pwned" not in outside


def test_title_element_is_html_escaped() -> None:
    page = render_player(manifest(HOSTILE))
    (title,) = re.findall(r"<title>(.*?)</title>", page, re.S)
    assert "<" not in title and ">" not in title
    assert title.startswith("&lt;/script&gt;&lt;script&gt;")


def test_untitled_story() -> None:
    story = manifest()
    story["metadata"]["title"] = "   "
    assert "<title>Untitled story</title>" in render_player(story)
    assert "<title>Untitled story</title>" in render_player({"scenelets": []})


def test_replacement_syntax_and_placeholders_in_story_text_stay_literal() -> None:
    tricky = r"$& $1 $$ \1 \g<0> @@SCRIPT@@ @@MANIFEST@@ @@CSP@@ {title} %s"
    story = manifest(tricky, tricky, tricky)
    page = render_player(story)
    assert json.loads(data_block(page)) == story
    # the player script went in exactly once, and nothing was substituted twice
    assert page.count("window.__player = Object.freeze") == 1
    assert page.count('id="story-manifest"') == 1
    outside_story_text = re.sub(r"<title>.*?</title>", "", page.replace(data_block(page), ""), flags=re.S)
    assert "@@" not in outside_story_text


def test_output_is_deterministic_and_independent_of_key_order() -> None:
    story = manifest("Same")
    reordered = json.loads(json.dumps(story))
    reordered = {key: reordered[key] for key in reversed(list(reordered))}
    assert render_player(story) == render_player(manifest("Same")) == render_player(reordered)


def test_non_ascii_text_is_kept_readable() -> None:
    story = manifest("Café, 夜の灯台 🌙")
    block = data_block(render_player(story))
    assert "Café, 夜の灯台 🌙" in block
    assert json.loads(block) == story


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def test_csp_allows_exactly_the_inline_script_and_style() -> None:
    page = render_player(manifest())
    (policy,) = CSP.findall(page)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    scripts = INLINE_SCRIPT.findall(page)
    (style,) = INLINE_STYLE.findall(page)
    assert len(scripts) == 1
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == f"'sha256-{_sha256(scripts[0])}'"
    assert directives["style-src"] == f"'sha256-{_sha256(style)}'"
    assert "unsafe" not in policy
    assert "'self'" in directives["img-src"] and "'self'" in directives["media-src"]
    # the policy is in force before any script element appears
    assert page.index("Content-Security-Policy") < page.index("<script")


def test_read_only_mappings_are_accepted() -> None:
    story = manifest()
    frozen = MappingProxyType({**story, "metadata": MappingProxyType(story["metadata"])})
    assert render_player(frozen) == render_player(story)


def test_embed_json_escapes() -> None:
    assert embed_json({"a": "<>&\u2028\u2029"}) == '{"a":"\\u003c\\u003e\\u0026\\u2028\\u2029"}'


@given(st.text(), st.text(), st.text())
def test_any_text_round_trips(title: str, prompt: str, label: str) -> None:
    story = manifest(title, prompt, label)
    page = render_player(story)
    assert json.loads(data_block(page)) == story
    assert page.lower().count("</script") == 2
