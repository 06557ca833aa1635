"""The bundled example, end to end through the CLI, as `make demo` runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bundler.db.connect import DatabaseTarget
from tests.cli_helpers import json_of, run_cli
from tests.conftest import new_database

EXAMPLE = Path(__file__).parent.parent / "examples" / "lantern-keeper" / "story.yaml"
EXAMPLE_ID = "7d3f5a2e-4b1c-4e8a-9f60-2c5d8e1a0b11"


def seed_and_assemble(database: DatabaseTarget, workdir: Path) -> Path:
    db = ["--database-url", database.conninfo]
    assets = workdir / "assets"
    seeded = run_cli("db", "seed", EXAMPLE, *db, "--assets-root", assets)
    assert seeded.returncode == 0, seeded.stderr
    result = run_cli("assemble", EXAMPLE_ID, *db, "--assets-root", assets, "--out", workdir / "bundles", "--json")
    assert result.returncode == 0, result.stderr
    report = json_of(result)
    assert report["ok"] and report["bundlePath"] == str(workdir / "bundles" / EXAMPLE_ID)
    return Path(report["bundlePath"])


def test_example_bundles_verifies_and_is_reproducible(pg_admin_uri: str, tmp_path: Path) -> None:
    first = seed_and_assemble(new_database(pg_admin_uri), tmp_path / "one")
    second = seed_and_assemble(new_database(pg_admin_uri), tmp_path / "two")

    check = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=first, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    verified = run_cli("verify", first, "--json")
    assert verified.returncode == 0 and json_of(verified)["ok"], verified.stderr

    manifest = json.loads((first / "manifest.json").read_text())
    nexts = {s["next"]["type"] for s in manifest["scenelets"]}
    assert nexts == {"branch", "linear", "terminal", "incomplete"}
    assert len(manifest["music"]["cues"]) >= 2
    assert any(s["branchAudioPath"] for s in manifest["scenelets"])
    # captions: the narration script of the storyboard, speaker and text
    first_shot = manifest["scenelets"][0]["shots"][0]
    assert first_shot["lines"] == [
        {
            "speaker": "narrator",
            "text": "The storm had been building all evening, and Greyhaven Light was the only star left over the sea.",
        }
    ]
    # the player carries the manifest without the file list (docs/design.md §5)
    html = (first / "index.html").read_text(encoding="utf-8")
    embedded = html.split('<script id="story-manifest" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded) == {key: value for key, value in manifest.items() if key != "files"}

    # seeded twice into two databases: the same bytes, exportedAt included
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
