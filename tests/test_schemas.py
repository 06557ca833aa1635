"""The published JSON Schemas: well-formed, printed by `bundler schema`, accept what we write, reject breakage.

Acceptance is also checked all over the suite: every manifest, report and export
the tests produce goes through tests/schema_check.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from bundler import api
from bundler.db.connect import DatabaseTarget
from bundler.schemas import NAMES, load_schema, schema_text
from tests.cli_helpers import run_cli
from tests.schema_check import assert_valid, schema_errors
from tests.test_assemble import branching_story
from tests.test_example import EXAMPLE

ROOT_ID = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize("name", NAMES)
def test_bundler_schema_prints_the_shipped_schema(name: str) -> None:
    result = run_cli("schema", name)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == load_schema(name)
    assert load_schema(name)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_unknown_schema_is_a_usage_error() -> None:
    result = run_cli("schema", "player")
    assert result.returncode == 2 and "manifest" in result.stderr


def test_schema_text_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown schema"):
        schema_text("../pyproject")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory, pg_admin_uri: str) -> dict[str, Any]:
    """A real manifest: branches, music, a terminal and an unplayable leaf."""
    import psycopg

    from tests.conftest import new_database

    database = new_database(pg_admin_uri)
    assets, out = tmp_path_factory.mktemp("assets"), tmp_path_factory.mktemp("out")
    story = branching_story()
    story.write_media(assets)
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        story.insert(conn)
    report = api.assemble(story.story_id, database=database, assets_root=assets, out_dir=out)
    assert report.ok and report.bundle_path
    document: dict[str, Any] = json.loads((report.bundle_path / "manifest.json").read_text(encoding="utf-8"))
    return document


def broken(document: dict[str, Any], change: Any) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    change(copied)
    return copied


def first_with(document: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in document["scenelets"] if s["next"]["type"] == kind)


def test_a_real_manifest_is_valid(manifest: dict[str, Any]) -> None:
    assert_valid("manifest", manifest)
    assert {s["next"]["type"] for s in manifest["scenelets"]} >= {"branch", "linear", "terminal"}


MANIFEST_BREAKAGE = {
    "missing rootSceneletId": lambda m: m.pop("rootSceneletId"),
    "unknown next.type": lambda m: first_with(m, "linear")["next"].update(type="jump"),
    "shot without shotIndex": lambda m: m["scenelets"][0]["shots"][0].pop("shotIndex"),
    "shot without lines": lambda m: m["scenelets"][0]["shots"][0].pop("lines"),
    "line without speaker": lambda m: m["scenelets"][0]["shots"][0].update(lines=[{"text": "Hello"}]),
    "shot index 0": lambda m: m["scenelets"][0]["shots"][0].update(shotIndex=0),
    "shot with neither media": lambda m: m["scenelets"][0]["shots"][0].update(imagePath=None, audioPath=None),
    "extra key on a shot": lambda m: m["scenelets"][0]["shots"][0].update(video="assets/x.mp4"),
    "linear without target": lambda m: first_with(m, "linear")["next"].pop("sceneletId"),
    "branch with one choice": lambda m: first_with(m, "branch")["next"]["choices"].pop(),
    "blank choice prompt": lambda m: first_with(m, "branch")["next"].update(choicePrompt="  "),
    "terminal with a target": lambda m: first_with(m, "terminal")["next"].update(sceneletId=ROOT_ID),
    "formatVersion 2": lambda m: m.update(formatVersion=2),
    "uppercase sha256": lambda m: m["files"][0].update(sha256=m["files"][0]["sha256"].upper()),
    "path leaving the bundle": lambda m: m["files"][0].update(path="../etc/passwd"),
    "path with %": lambda m: m["files"][0].update(path="assets/100%.png"),
    "exportedAt not UTC": lambda m: m["metadata"].update(exportedAt="2026-03-01T12:00:00+02:00"),
    "scenelet id not a UUID": lambda m: m["scenelets"][0].update(id="scenelet-1"),
    "unknown top-level key": lambda m: m.update(extra=True),
}


# structural breakage verify must catch as well as the schema (beyond MANIFEST_BREAKAGE)
STRUCTURE_BREAKAGE = {
    **MANIFEST_BREAKAGE,
    "extra key on a scenelet": lambda m: m["scenelets"][0].update(extra=1),
    "extra key in metadata": lambda m: m["metadata"].update(extra=1),
    "extra key in music": lambda m: m["music"].update(extra=1),
    "extra key on a file": lambda m: m["files"][0].update(extra=1),
    "no generator": lambda m: m.pop("generator"),
    "empty title": lambda m: m["metadata"].update(title=""),
    "storyId not a UUID": lambda m: m["metadata"].update(storyId="story-1"),
    "label not scenelet-N": lambda m: m["scenelets"][0].update(label="first"),
    "description missing": lambda m: m["scenelets"][0].pop("description"),
}


@pytest.mark.parametrize("case", MANIFEST_BREAKAGE)
def test_manifest_schema_rejects(manifest: dict[str, Any], case: str) -> None:
    assert schema_errors("manifest", broken(manifest, MANIFEST_BREAKAGE[case]))


@pytest.mark.parametrize("case", STRUCTURE_BREAKAGE)
def test_verify_rejects_what_the_schema_rejects(case: str, tmp_path: Path) -> None:
    """verify keeps its own checks and messages, and agrees with the schema on every one of these."""
    from bundler.api import verify as verify_bundle
    from tests.bundle_factory import edit_manifest, make_bundle, read_manifest

    bundle = make_bundle(tmp_path)
    assert not schema_errors("manifest", read_manifest(bundle))
    edit_manifest(bundle, STRUCTURE_BREAKAGE[case])
    assert schema_errors("manifest", read_manifest(bundle))
    report = verify_bundle(bundle)
    assert not report.ok, f"verify accepts a manifest with {case}"


def story_report(**changes: Any) -> dict[str, Any]:
    report = {
        "ok": False,
        "storyId": ROOT_ID,
        "bundlePath": None,
        "problems": [
            {
                "severity": "error",
                "code": "root-not-playable",
                "message": "Root scenelet … does not have playable assets.",
                "sceneletId": ROOT_ID,
                "sceneletLabel": "scenelet-1",
                "shotIndex": None,
                "path": None,
            }
        ],
        "stats": {"scenelets": 1, "errors": 1, "warnings": 0},
        "reportVersion": 1,
        "generator": "bundler 0.1.0",
    }
    return {**report, **changes}


def test_report_schema_accepts_single_and_batch_shapes() -> None:
    assert_valid("report", story_report())
    single = story_report()
    batch = {"ok": False, "stories": [{k: v for k, v in single.items() if k not in ("reportVersion", "generator")}]}
    assert_valid("report", {**batch, "reportVersion": 1, "generator": "bundler 0.1.0"})


REPORT_BREAKAGE: dict[str, dict[str, Any]] = {
    "no reportVersion": {k: v for k, v in story_report().items() if k != "reportVersion"},
    "reportVersion 2": story_report(reportVersion=2),
    "severity info": story_report(problems=[{**story_report()["problems"][0], "severity": "info"}]),
    "code not kebab-case": story_report(problems=[{**story_report()["problems"][0], "code": "Root Not Playable"}]),
    "problem without path key": story_report(
        problems=[{k: v for k, v in story_report()["problems"][0].items() if k != "path"}]
    ),
    "ok not a boolean": story_report(ok="yes"),
    "unknown key": story_report(warnings=3),
}


@pytest.mark.parametrize("case", REPORT_BREAKAGE)
def test_report_schema_rejects(case: str) -> None:
    assert schema_errors("report", REPORT_BREAKAGE[case])


@pytest.fixture(scope="module")
def story_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(Path(EXAMPLE).read_text(encoding="utf-8"))
    return document


def test_the_example_story_is_valid(story_document: dict[str, Any]) -> None:
    assert_valid("story", story_document)


STORY_BREAKAGE = {
    "wrong format": lambda d: d.update(format="bundler-story/2"),
    "no scenelets": lambda d: d.update(scenelets=[]),
    "scenelet without parent key": lambda d: d["scenelets"][0].pop("parent"),
    "typo in a key": lambda d: d["scenelets"][0].update(choise_label="x"),
    "shot without index": lambda d: next(s for s in d["scenelets"] if s.get("shots"))["shots"][0].pop("index"),
    "null storyboard": lambda d: next(s for s in d["scenelets"] if s.get("shots"))["shots"][0].update(storyboard=None),
    "unknown role": lambda d: d["scenelets"][0].update(role="leaf"),
    "blank title": lambda d: d["story"].update(title="  "),
}


@pytest.mark.parametrize("case", STORY_BREAKAGE)
def test_story_schema_rejects(story_document: dict[str, Any], case: str) -> None:
    assert schema_errors("story", broken(story_document, STORY_BREAKAGE[case]))


def test_cli_reports_and_exports_are_validated(database: DatabaseTarget, tmp_path: Path) -> None:
    """The suite-wide hook really validates: a run through json_of counts one report, manifest and story each."""
    from tests.cli_helpers import json_of
    from tests.schema_check import validated

    db = ["--database-url", database.conninfo]
    assert run_cli("db", "seed", EXAMPLE, *db, "--assets-root", tmp_path / "a").returncode == 0
    before = validated.copy()
    story_id = yaml.safe_load(Path(EXAMPLE).read_text(encoding="utf-8"))["story"]["id"]
    # real processes: in-process runs are also validated by the writer hooks, which would count twice
    out = tmp_path / "o"
    json_of(run_cli("assemble", story_id, *db, "--assets-root", tmp_path / "a", "--out", out, "--json", process=True))
    json_of(run_cli("export", story_id, *db, "--json", process=True))
    assert validated - before == {"report": 1, "manifest": 1, "story": 1}
