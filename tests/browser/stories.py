"""Stories for the browser tests, written into a real database through the
pipeline's repository API, with real media under an assets root.

A story is described in script order (pre-order, siblings in choice order);
``create_story`` turns that into rows the way the pipeline would: branch
children get *older* timestamps the later they come (the generator inserts
them last-first), shots carry the ``scenelet-N`` labels, and media paths use
the pipeline's stored formats (key frames without, narration with the
``generated/`` prefix).
"""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import psycopg

from bundler.db.repository import Repository
from bundler.records import NewShot
from tests.media_files import m4a_bytes

BASE_TIME = datetime(2026, 2, 1, 20, 0, tzinfo=UTC)
# A real 2 s AAC tone (7 KB) so the music path is exercised with a decodable file:
# ffmpeg -f lavfi -i "sine=frequency=196:duration=2" -af "volume=0.25,afade=t=in:d=0.2,afade=t=out:st=1.8:d=0.2"
#        -ac 1 -c:a aac -b:a 24k -map_metadata -1 -fflags +bitexact -flags:a +bitexact music.m4a
MUSIC_FIXTURE = Path(__file__).parent / "data" / "music.m4a"

# Sky top, sky bottom, far hills, near hills: enough variety that screenshots
# show which scene is on screen.
Palette = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]
PALETTES: tuple[Palette, ...] = (
    ((14, 20, 48), (186, 96, 74), (58, 40, 62), (22, 18, 30)),  # dusk
    ((8, 14, 32), (40, 70, 120), (26, 40, 66), (10, 16, 28)),  # night sea
    ((30, 16, 40), (230, 150, 80), (90, 50, 60), (30, 20, 30)),  # lantern glow
    ((10, 30, 40), (90, 160, 150), (30, 70, 70), (12, 30, 32)),  # teal dawn
    ((40, 10, 20), (200, 70, 60), (80, 26, 36), (26, 8, 14)),  # storm
)


# ------------------------------------------------------------------ media


def _mix(a: Sequence[float], b: Sequence[float], amount: float) -> tuple[float, ...]:
    return tuple(x + (y - x) * amount for x, y in zip(a, b, strict=True))


def _png(width: int, height: int, rows: Sequence[bytes]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


@cache
def key_frame_png(palette_index: int, width: int = 640, height: int = 360) -> bytes:
    """A procedural landscape (sky gradient, a glowing moon, two hills) as PNG.

    Edges are anti-aliased so screenshots of the player look like a picture,
    not like a test pattern. Hills are filled a column at a time with extended
    slices and only the moon's box is computed per pixel, to keep pure Python fast.
    """
    top, bottom, far, near = PALETTES[palette_index % len(PALETTES)]
    moon = (244, 232, 200)
    stride = width * 3
    image = bytearray()
    for y in range(height):
        image += bytes(round(c) for c in _mix(top, bottom, y / (height - 1))) * width

    def blend(x: int, y: int, color: Sequence[float], amount: float) -> None:
        at = y * stride + 3 * x
        image[at : at + 3] = bytes(round(c) for c in _mix(image[at : at + 3], color, amount))

    moon_x, moon_y, moon_r = width * (0.22 + 0.14 * (palette_index % 4)), height * 0.3, height * 0.075
    reach = int(3 * moon_r)
    for y in range(max(0, int(moon_y) - reach), min(height, int(moon_y) + reach)):
        for x in range(max(0, int(moon_x) - reach), min(width, int(moon_x) + reach)):
            distance = math.hypot(x - moon_x, y - moon_y)
            blend(x, y, moon, 0.35 * max(0.0, 1 - distance / reach) ** 3)  # glow, gone at the box edge
            blend(x, y, moon, min(1.0, max(0.0, moon_r - distance + 0.5)))  # disc

    for color, level, amplitude, waves in ((far, 0.6, 0.07, 6.5), (near, 0.77, 0.05, 10.5)):
        for x in range(width):
            line = height * (level + amplitude * math.sin(x / width * waves + palette_index * waves / 6))
            first_full = max(0, math.ceil(line + 0.5))
            rows = height - first_full
            for channel in range(3):
                start = first_full * stride + 3 * x + channel
                image[start::stride] = bytes([color[channel]]) * rows
            if 0 < first_full <= height:
                blend(x, first_full - 1, color, first_full - 1 - line + 0.5)
    return _png(width, height, [bytes(image[y * stride : (y + 1) * stride]) for y in range(height)])


@cache
def narration_wav(seconds: float = 0.25, rate: int = 8000, pitch: float = 440.0) -> bytes:
    """A short, quiet sine tone: real WAV narration that ends quickly."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        out.writeframes(
            b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * pitch * i / rate))) for i in range(frames))
        )
    return buffer.getvalue()


@cache
def white_png(width: int = 640, height: int = 360) -> bytes:
    """A plain white key frame: the hardest background for a light caption."""
    return _png(width, height, [b"\xff" * (3 * width)] * height)


def broken_m4a() -> bytes:
    """Passes the bundler's structure checks (``ftyp``, empty ``moov``) but no browser can decode it."""
    return m4a_bytes()


# ------------------------------------------------------------------ specs


@dataclass(frozen=True)
class ShotSpec:
    image: str | None = "png"  # "png"/"white": real file; "missing": path stored, no file; None: no path
    audio: str | None = "wav"  # "wav": real file; "missing": path stored, no file; "N/A"; None
    lines: tuple[tuple[str, str], ...] = ()  # the storyboard's narration script: (source, line)


@dataclass(frozen=True)
class SceneSpec:
    key: str
    description: str
    shots: tuple[ShotSpec, ...] = (ShotSpec(),)
    parent: str | None = None
    choice_label: str | None = None  # label of the parent's choice leading here
    prompt: str | None = None  # set for a branch point
    terminal: bool = False
    branch_audio: bool = False
    palette: int = 0


@dataclass(frozen=True)
class CueSpec:
    name: str
    scenes: tuple[str, ...]
    playable: bool = True  # False: a file that sniffs as M4A but cannot be decoded


@dataclass(frozen=True)
class StorySpec:
    title: str
    scenes: tuple[SceneSpec, ...]  # script order
    cues: tuple[CueSpec, ...] = ()


@dataclass
class BuiltStory:
    story_id: str
    ids: dict[str, str] = field(default_factory=dict)  # scene key -> scenelet UUID
    labels: dict[str, str] = field(default_factory=dict)  # scene key -> scenelet-N

    def id(self, key: str) -> str:
        return self.ids[key]


def _labels(spec: StorySpec) -> dict[str, str]:
    """``scenelet-N`` by pre-order from the root, children in script order (docs/design.md §2)."""
    children: dict[str | None, list[str]] = {}
    for scene in spec.scenes:
        children.setdefault(scene.parent, []).append(scene.key)
    (root,) = children[None]
    labels: dict[str, str] = {}
    stack = [root]
    while stack:
        key = stack.pop()
        labels[key] = f"scenelet-{len(labels) + 1}"
        stack.extend(reversed(children.get(key, [])))
    return labels


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def create_story(conn: psycopg.Connection, assets_root: Path, spec: StorySpec) -> BuiltStory:
    """Insert ``spec`` with the repository API and write its media under ``assets_root``."""
    repo = Repository(conn)
    labels = _labels(spec)
    cue_document = {
        "audio_design_document": {
            "music_and_ambience_cues": [
                {"cue_name": cue.name, "associated_scenelet_ids": [labels[key] for key in cue.scenes]}
                for cue in spec.cues
            ]
        }
    }
    story_id = repo.create_story(
        spec.title,
        "A test story.",
        audio_design_document=cue_document if spec.cues else None,
        created_at=BASE_TIME,
    )
    built = BuiltStory(story_id, labels=labels)
    for position, scene in enumerate(spec.scenes):
        label = labels[scene.key]
        branch_audio = None
        if scene.branch_audio:
            branch_audio = f"generated/{story_id}/branches/{label}/branch_audio.wav"
            _write(assets_root / branch_audio.removeprefix("generated/"), narration_wav(0.3, pitch=330.0))
        built.ids[scene.key] = repo.create_scenelet(
            story_id,
            {"description": scene.description, "dialogue": [], "shot_suggestions": ["A wide shot."]},
            parent_id=built.ids[scene.parent] if scene.parent else None,
            choice_label_from_parent=scene.choice_label,
            choice_prompt=scene.prompt,
            is_branch_point=scene.prompt is not None,
            is_terminal_node=scene.terminal,
            branch_audio_file_path=branch_audio,
            # later siblings are older: the pipeline inserts branch children last-first
            created_at=BASE_TIME - timedelta(minutes=position),
        )
    for scene in spec.scenes:
        label = labels[scene.key]
        shots = []
        for index, shot in enumerate(scene.shots, start=1):
            image = audio = None
            if shot.image is not None:
                image = f"{story_id}/shots/{label}/shot-{index}_key_frame.png"
                if shot.image in ("png", "white"):
                    _write(assets_root / image, white_png() if shot.image == "white" else key_frame_png(scene.palette))
            if shot.audio == "N/A":
                audio = "N/A"
            elif shot.audio is not None:
                audio = f"generated/{story_id}/shots/{label}/{index}_audio.wav"
                if shot.audio == "wav":
                    _write(assets_root / audio.removeprefix("generated/"), narration_wav())
            payload = {
                "framingAndAngle": "wide",
                "audioAndNarrative": [
                    {"source": source, "line": line, "type": "monologue"} for source, line in shot.lines
                ],
            }
            shots.append(NewShot(index, payload, image, audio))
        repo.create_scenelet_shots(story_id, built.ids[scene.key], label, int(label.split("-")[1]), shots)
    for cue in spec.cues:
        data = MUSIC_FIXTURE.read_bytes() if cue.playable else broken_m4a()
        _write(assets_root / story_id / "music" / f"{cue.name}.m4a", data)
    return built


# ------------------------------------------------------------------ the stories

LANTERN = StorySpec(
    title="The Lantern Keeper",
    scenes=(
        SceneSpec(
            "harbor",
            "Mira lights the old lantern as the fog rolls in over the harbor.",
            shots=(ShotSpec(), ShotSpec()),
            palette=0,
        ),
        SceneSpec(
            "signal",
            "Far out on the water, a second light answers hers.",
            shots=(ShotSpec(audio="N/A"),),  # a shot with no narration: held for a fixed time
            parent="harbor",
            prompt="Where should Mira go?",
            branch_audio=True,
            palette=1,
        ),
        SceneSpec(
            "tower",
            "She climbs the lighthouse stairs, lantern swinging.",
            parent="signal",
            choice_label="Climb the lighthouse",
            terminal=True,
            palette=2,
        ),
        SceneSpec(
            "boat",
            "She rows toward the strange light.",
            parent="signal",
            choice_label="Row out to the light",
            palette=3,
        ),
        SceneSpec(
            "open-water",
            "The harbor disappears behind her.",
            parent="boat",
            palette=4,
        ),  # not terminal, no children: the path is still being written
    ),
    cues=(
        CueSpec("Harbor Night", ("harbor", "signal")),
        CueSpec("Lighthouse", ("tower",)),
        CueSpec("Broken Cue", ("boat",), playable=False),
    ),
)

XSS_SCRIPT = "</script><script>window.__pwned=1</script>"
XSS_IMG = "<img src=x onerror=window.__pwned=2>"
XSS_CUE = "<img src=x onerror=window.__pwned=3>"

HOSTILE = StorySpec(
    title=f"{XSS_SCRIPT} & {XSS_IMG} \u2028 $& @@SCRIPT@@",
    scenes=(
        SceneSpec("root", f"Caption {XSS_SCRIPT} {XSS_IMG}", prompt=f"Prompt {XSS_SCRIPT} {XSS_IMG}", palette=2),
        SceneSpec("a", "A", parent="root", choice_label=f"Label {XSS_SCRIPT}", terminal=True, palette=3),
        SceneSpec(
            "b",
            "B",
            shots=(ShotSpec(lines=((XSS_IMG, f"Line {XSS_SCRIPT} {XSS_IMG}"),)),),  # story so far lists it
            parent="root",
            choice_label=f"Label {XSS_IMG}",
            terminal=True,
            palette=4,
        ),
    ),
    cues=(CueSpec(XSS_CUE, ("root",)),),
)

DAMAGED = StorySpec(
    title="Missing Pieces",
    scenes=(
        SceneSpec(
            "root",
            "Some media never made it.",
            shots=(
                ShotSpec(image="missing"),  # key frame path stored, file absent: placeholder
                ShotSpec(),  # image deleted from the bundle after assembly
                ShotSpec(),  # narration deleted from the bundle after assembly
                ShotSpec(),  # play() rejected by the test
                ShotSpec(audio=None),  # no narration at all
            ),
            terminal=True,
        ),
    ),
)


# A long narration over a white frame (captions), a cue whose name needs URL
# encoding, and choice targets whose first key frame is gone or that have none.
LONG_NARRATION = (
    ("narrator", "The storm had been building all evening, and the light on the point was the only star left."),
    ("mara", "Grandpa says the lamp never goes out. Not once in forty years, not in any weather, not ever."),
    ("narrator", "Then, with a sigh like a blown candle, it did, and the dark came in from the sea all at once."),
    ("keeper", "Mara! The oil store, quickly, before the ships come round the headland and see nothing there."),
    ("narrator", "She ran, and the stairs went round and round, and the wind screamed at every window she passed."),
)
HASH_CUE = "Storm #1"
CAPTIONED = StorySpec(
    title="Captions and Edges",
    scenes=(
        SceneSpec(
            "root",
            "A white room, a long speech.",
            shots=(ShotSpec(image="white", lines=LONG_NARRATION), ShotSpec(lines=(("narrator", "Choose."),))),
            prompt="Which way?",
            palette=2,
        ),
        SceneSpec(
            "lit",
            "The lit path.",
            shots=(ShotSpec(), ShotSpec()),  # the first key frame is removed from the bundle by the test
            parent="root",
            choice_label="Take the lit path",
            terminal=True,
            palette=3,
        ),
        SceneSpec(
            "dark",
            "The dark path.",
            shots=(ShotSpec(image=None),),  # narration only: no thumbnail at all
            parent="root",
            choice_label="Take the dark path",
            terminal=True,
        ),
    ),
    cues=(CueSpec(HASH_CUE, ("root",)),),
)
