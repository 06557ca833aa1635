"""Synthetic stories for the benchmark: database rows (loaded with COPY) and media files.

The tree is built iteratively, breadth-first: each open end grows a chain of
``chain`` linear scenelets followed by a branch point with ``branching``
children; ends left when the scenelet budget runs out become terminal. Labels
and sequences stored on shots are the ones the planner recomputes (pre-order,
siblings in insertion order), so a benchmark story carries no ``label-drift``
warnings. Media files have real PNG / RIFF-WAVE / MP4 headers and random
bodies, so content checks pass and nothing compresses or deduplicates.
"""

from __future__ import annotations

import json
import os
import struct
import uuid
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

BASE_TIME = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    name: str
    scenelets: int
    shots_per_scenelet: int
    branching: int  # children of each branch point
    chain: int  # linear scenelets between two branch points
    image_bytes: int  # size of each key frame
    audio_bytes: int  # size of each narration / branch narration file
    music_bytes: int
    music_cues: int
    # shots (the first N of each scenelet) whose key frame and narration exist on disk;
    # the others are storyboarded but not rendered yet: key frame NULL, narration 'N/A'
    media_shots: int
    narration_lines: int = 0  # entries of each shot's storyboard audioAndNarrative (captions)

    @property
    def shots(self) -> int:
        return self.scenelets * self.shots_per_scenelet


@dataclass
class Scenelet:
    id: str
    parent: str | None
    choice_label: str | None
    branch_point: bool = False
    terminal: bool = False
    children: list[str] | None = None


@dataclass(frozen=True)
class Generated:
    story_id: str
    shape: Shape
    media_files: int
    media_bytes: int
    media_dir: Path  # <assets-root>/<story-id>: exactly the files the bundle copies
    branch_points: int


def story_tree(shape: Shape, rng_seed: int) -> list[Scenelet]:
    """Scenelets in creation order (parents before children)."""
    ids = uuid_stream(rng_seed)
    scenelets: list[Scenelet] = []
    by_id: dict[str, Scenelet] = {}
    ends: deque[tuple[str | None, str | None]] = deque([(None, None)])
    while len(scenelets) < shape.scenelets and ends:
        parent, label = ends.popleft()
        for _ in range(shape.chain):
            if len(scenelets) >= shape.scenelets:
                break
            node = Scenelet(next(ids), parent, label, children=[])
            scenelets.append(node)
            by_id[node.id] = node
            if parent is not None:
                children = by_id[parent].children
                assert children is not None
                children.append(node.id)
            parent, label = node.id, None
        room = shape.scenelets - len(scenelets) - len(ends)
        if parent is not None and room >= shape.branching:
            by_id[parent].branch_point = True
            for n in range(shape.branching):
                ends.append((parent, f"Choice {n + 1}"))
    # an end that got no children (budget exhausted) finishes the story
    for node in scenelets:
        assert node.children is not None
        if not node.children:
            node.branch_point = False
            node.terminal = True
    # a branch point some of whose children were never created is not a branch any more
    for node in scenelets:
        assert node.children is not None
        if node.branch_point and len(node.children) < 2:
            node.branch_point = False
    return scenelets


def uuid_stream(seed: int) -> Iterator[str]:
    counter = 0
    while True:
        counter += 1
        yield str(uuid.UUID(int=(seed << 64) | counter, version=4))


def pre_order_labels(scenelets: list[Scenelet]) -> dict[str, int]:
    by_id = {s.id: s for s in scenelets}
    roots = [s.id for s in scenelets if s.parent is None]
    order: dict[str, int] = {}
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        order[node] = len(order) + 1
        stack.extend(reversed(by_id[node].children or []))
    return order


# -- media ------------------------------------------------------------------------------


class MediaWriter:
    """Writes files of exact sizes from one random pool, each with a unique header."""

    def __init__(self, seed: int) -> None:
        self.pool = os.urandom(4 << 20) if seed else b""
        self.position = 0
        self.files = 0
        self.bytes = 0

    def body(self, size: int) -> bytes:
        if size <= 0:
            return b""
        if self.position + size > len(self.pool):
            self.position = (self.position * 7919 + 13) % max(1, len(self.pool) - size)
        chunk = self.pool[self.position : self.position + size]
        self.position += size // 3 + 1
        if len(chunk) < size:
            chunk = (chunk * (size // max(1, len(chunk)) + 1))[:size]
        return chunk

    def write(self, path: Path, kind: str, size: int) -> None:
        header = HEADERS[kind](size, self.files)
        trailer = TRAILERS.get(kind, b"")
        data = header + self.body(size - len(header) - len(trailer)) + trailer
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.files += 1
        self.bytes += len(data)


def png_header(size: int, serial: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 1920, 1080, 8, 2, 0, 0, 0))
    text = chunk(b"tEXt", b"Comment\x00" + f"bench {serial}".encode())
    # then one IDAT chunk of random bytes (its CRC is not checked by anyone) and IEND (TRAILERS)
    head = b"\x89PNG\r\n\x1a\n" + ihdr + text
    idat_len = max(0, size - len(head) - 8 - len(PNG_TRAILER))
    return head + struct.pack(">I", idat_len) + b"IDAT"


PNG_TRAILER = b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00IEND\xaeB`\x82"  # IDAT's CRC, then IEND


def wav_header(size: int, serial: int) -> bytes:
    data_len = max(0, size - 44)
    fmt = struct.pack("<HHIIHH", 1, 1, 22050, 44100, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_len)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + (struct.pack("<I", data_len))
    )


def m4a_header(size: int, serial: int) -> bytes:
    ftyp = b"M4A \x00\x00\x02\x00" + b"M4A mp42isom"
    moov = struct.pack(">I", 8) + b"moov"  # empty, but there: the structure check wants one
    return struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp + moov + struct.pack(">I", max(8, size - 36)) + b"mdat"


HEADERS = {"image": png_header, "audio": wav_header, "music": m4a_header}
TRAILERS = {"image": PNG_TRAILER}


# -- database ---------------------------------------------------------------------------


def generate(conn: psycopg.Connection, shape: Shape, assets_root: Path, seed: int) -> Generated:
    """Insert one story of ``shape`` and write its media under ``assets_root``."""
    scenelets = story_tree(shape, seed)
    labels = pre_order_labels(scenelets)
    story_id = str(uuid.UUID(int=(seed << 64), version=4))
    media = MediaWriter(seed)
    story_dir = assets_root / story_id

    cue_names = [f"Theme {n + 1}: {shape.name}" for n in range(shape.music_cues)]
    by_label = sorted(labels, key=labels.__getitem__)
    cues = []
    for n, name in enumerate(cue_names):
        members = by_label[n :: max(1, shape.music_cues)][:50]
        cues.append({"cue_name": name, "associated_scenelet_ids": [f"scenelet-{labels[m]}" for m in members]})
        media.write(story_dir / "music" / f"{name}.m4a", "music", shape.music_bytes)
    audio_design = {"audio_design_document": {"music_and_ambience_cues": cues}}

    with conn.transaction():
        conn.execute(
            "insert into stories (id, display_name, initial_prompt, audio_design_document, created_at, updated_at) "
            "values (%s, %s, %s, %s, %s, %s)",
            (story_id, f"Benchmark {shape.name}", "benchmark", json.dumps(audio_design), BASE_TIME, BASE_TIME),
        )
        with conn.cursor() as cur:
            with cur.copy(
                "copy scenelets (id, story_id, parent_id, choice_label_from_parent, choice_prompt, content, "
                "is_branch_point, is_terminal_node, branch_audio_file_path, created_at) from stdin"
            ) as copy:
                for position, node in enumerate(scenelets):
                    branch_audio = None
                    if node.branch_point:
                        relative = f"{story_id}/branches/{node.id}/branch_audio.wav"
                        media.write(assets_root / relative, "audio", shape.audio_bytes)
                        branch_audio = f"generated/{relative}"
                    content = {
                        "description": f"Scene {labels[node.id]} of the {shape.name} benchmark story.",
                        "dialogue": [{"character": "Narrator", "line": "Onwards."}],
                        "shot_suggestions": [],
                    }
                    copy.write_row(
                        (
                            node.id,
                            story_id,
                            node.parent,
                            node.choice_label,
                            "What now?" if node.branch_point else None,
                            json.dumps(content),
                            node.branch_point,
                            node.terminal,
                            branch_audio,
                            # earlier siblings are newer: the pipeline inserts branch children last-first
                            BASE_TIME - timedelta(seconds=position),
                        )
                    )
            with cur.copy(
                "copy shots (story_id, scenelet_ref, scenelet_id, scenelet_sequence, shot_index, storyboard_payload, "
                "key_frame_image_path, audio_file_path, created_at, updated_at) from stdin"
            ) as copy:
                line = "the lamp went dark. " * 5  # ~100 characters, like the example story's lines
                narration = [
                    {"source": "narrator" if n % 2 == 0 else "mara", "line": f"Line {n + 1}: {line}"}
                    for n in range(shape.narration_lines)
                ]
                storyboard: dict[str, Any] = {"framingAndAngle": "wide", "characterActionAndEmotion": "x" * 200}
                if narration:
                    storyboard["audioAndNarrative"] = narration
                payload = json.dumps(storyboard)
                for node in scenelets:
                    sequence = labels[node.id]
                    for index in range(1, shape.shots_per_scenelet + 1):
                        image: str | None = None
                        audio = "N/A"
                        if index <= shape.media_shots:
                            image_rel = f"{story_id}/shots/{node.id}/shot-{index}_key_frame.png"
                            audio_rel = f"{story_id}/shots/{node.id}/{index}_audio.wav"
                            media.write(assets_root / image_rel, "image", shape.image_bytes)
                            media.write(assets_root / audio_rel, "audio", shape.audio_bytes)
                            image, audio = f"generated/{image_rel}", audio_rel
                        copy.write_row(
                            (
                                story_id,
                                node.id,
                                f"scenelet-{sequence}",
                                sequence,
                                index,
                                payload,
                                image,
                                audio,
                                BASE_TIME,
                                BASE_TIME,
                            )
                        )
    conn.execute("analyze stories")
    conn.execute("analyze scenelets")
    conn.execute("analyze shots")
    return Generated(
        story_id=story_id,
        shape=shape,
        media_files=media.files,
        media_bytes=media.bytes,
        media_dir=story_dir,
        branch_points=sum(1 for s in scenelets if s.branch_point),
    )


if __name__ == "__main__":  # pragma: no cover - manual smoke test of the tree shape
    tree = story_tree(Shape("t", 30, 1, 2, 3, 0, 0, 0, 0, 0), 1)
    for s in tree:
        print(s.id[-4:], (s.parent or "    ")[-4:], s.branch_point, s.terminal, len(s.children or []))
