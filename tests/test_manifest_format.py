"""The manifest's bytes are a published format: a golden copy of the example's manifest guards them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bundler import __version__
from bundler.bundle.manifest import dump_bytes, dumps
from tests.conftest import new_database
from tests.test_example import seed_and_assemble

GOLDEN = Path(__file__).parent / "golden" / "lantern-keeper.manifest.json"
GENERATOR = b'"generator": "bundler VERSION"'  # the golden copy does not change with each release
# nor with each change of the player: its entry keeps the manifest's shape, with zero size and hash
PLAYER_ENTRY = re.compile(rb'("path": "index\.html",\n\s+"bytes": )\d+(,\n\s+"sha256": ")[0-9a-f]{64}')


def without_player_digest(manifest: bytes) -> bytes:
    replaced, count = PLAYER_ENTRY.subn(rb"\g<1>0\g<2>" + b"0" * 64, manifest)
    assert count == 1
    return replaced


def test_the_example_manifest_matches_the_golden_bytes(pg_admin_uri: str, tmp_path: Path) -> None:
    bundle = seed_and_assemble(new_database(pg_admin_uri), tmp_path)
    written = without_player_digest((bundle / "manifest.json").read_bytes())
    expected = GOLDEN.read_bytes().replace(GENERATOR, f'"generator": "bundler {__version__}"'.encode())
    # changed on purpose? `make demo`, then copy .demo/bundles/<id>/manifest.json here with the version as VERSION
    assert written == expected, "manifest.json bytes changed"


def test_the_writer_matches_the_json_module_on_the_golden_document() -> None:
    document = json.loads(GOLDEN.read_bytes())
    document["metadata"]["title"] = 'Quotes " \\ tabs \t, \u00e9, \u2028, DEL \x7f, NUL \x00 and <&>'
    expected = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert dump_bytes(document) == expected.encode("utf-8")
    assert dumps(document) == expected


def test_what_the_fast_writer_refuses_still_matches_the_json_module() -> None:
    document = {"big": 2**70, "nested": {"1": [-(2**64)]}}
    assert dumps(document) == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
