"""The player over a slow network, measured in the system Chromium (part of ``make bench``).

Serves a bundle folder over HTTP from a sub-path and throttles Chromium with
the DevTools protocol (``Network.emulateNetworkConditions``: 1.6 Mbps down,
750 kbps up, 150 ms round trip by default), then reports, median over runs:

* **Start to first frame**: from the click on Start to the first shot's key
  frame on screen;
* **longest stall between shots**: during an automatic playthrough (first
  choice at every branch, real pacing), the longest time a shot waited on its
  media: from the shot's start until its key frame is shown, plus from its
  narration's start until the sound actually plays.

It takes any bundle folder and never assumes file types, so a master bundle
and a ``--web`` one are measured the same way::

    .venv/bin/python bench/player_network.py <bundle-folder> [<bundle-folder>...]
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("BUNDLER_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
PREFIX = "/published/stories/"
# When each narration really starts to sound, on the page's clock (the player's events use it too).
WATCH_SOUND = """
window.__playing = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  this.addEventListener('playing', () => window.__playing.push([this.currentSrc, performance.now()]), {once: true});
  return play.call(this);
};
"""
# When each shot's key frame is on screen: polled every frame.
WATCH_FRAMES = """
window.__shown = [];
const tick = () => {
  const s = window.__player && window.__player.state();
  if (s && s.image !== 'loading') {
    const last = window.__shown[window.__shown.length - 1];
    const key = s.sceneletId + '/' + s.shotIndex;
    if (!last || last[0] !== key) window.__shown.push([key, performance.now()]);
  }
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"""


@dataclass(frozen=True)
class Network:
    down_kbps: float = 1600
    up_kbps: float = 750
    rtt_ms: float = 150


@dataclass(frozen=True)
class NetworkFigures:
    bundle: str
    media_mb: float
    start_to_frame_ms: list[float]
    longest_stall_ms: list[float]
    shots: int

    @property
    def start_to_frame(self) -> float:
        return statistics.median(self.start_to_frame_ms)

    @property
    def longest_stall(self) -> float:
        return statistics.median(self.longest_stall_ms)


class _Quiet(SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        plain = urllib.parse.urlsplit(path).path
        if not plain.startswith(PREFIX):
            return str(Path(self.directory) / "no-such-file")
        return super().translate_path("/" + plain[len(PREFIX) :])

    def log_message(self, format: str, *args: Any) -> None:  # the base class's signature
        pass


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{PREFIX}{urllib.parse.quote(folder.name)}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _one_run(browser: Any, url: str, network: Network, timeout_ms: float) -> tuple[float, float, int]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(WATCH_SOUND + WATCH_FRAMES)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": network.rtt_ms,
            "downloadThroughput": network.down_kbps * 1000 / 8,
            "uploadThroughput": network.up_kbps * 1000 / 8,
        },
    )
    try:
        page.goto(url, wait_until="commit", timeout=timeout_ms)
        page.wait_for_function(
            "() => window.__player && window.__player.state().screen === 'start'", timeout=timeout_ms
        )
        page.click("#start-button")
        # the viewer takes the first choice at every branch, until an ending
        page.evaluate(
            """(limit) => new Promise((resolve) => {
                const started = performance.now();
                const tick = () => {
                  const s = window.__player.state();
                  if (['terminal', 'incomplete', 'error'].includes(s.screen) || performance.now() - started > limit) {
                    resolve();
                    return;
                  }
                  if (s.screen === 'choice' && !window.__chose) {
                    window.__chose = true;
                    const choose = () => document.querySelector('#choice-list .choice').click();
                    setTimeout(() => { window.__chose = false; choose(); }, 500);
                  }
                  setTimeout(tick, 50);
                };
                tick();
            })""",
            timeout_ms,
        )
        events: list[dict[str, Any]] = page.evaluate("window.__player.events()")
        shown: list[list[Any]] = page.evaluate("window.__shown")
        playing: list[list[Any]] = page.evaluate("window.__playing")
    finally:
        context.close()
    start = next(e["t"] for e in events if e["type"] == "start")
    shots = [e for e in events if e["type"] == "shot"]
    stalls = []
    for shot in shots:
        key = f"{shot['sceneletId']}/{shot['shotIndex']}"
        frame = next((t for k, t in shown if k == key and t >= shot["t"] - 1), None)
        stall = max(0.0, frame - shot["t"]) if frame is not None and shot["imagePath"] else 0.0
        began = next(
            (
                e["t"]
                for e in events
                if e["type"] == "narration-start"
                and e["sceneletId"] == shot["sceneletId"]
                and e["shotIndex"] == shot["shotIndex"]
                and e["t"] >= shot["t"]
            ),
            None,
        )
        if began is not None and shot["audioPath"]:
            name = urllib.parse.quote(shot["audioPath"].rsplit("/", 1)[-1])
            sounded = next((t for src, t in playing if src.endswith(name) and t >= began), None)
            if sounded is not None:
                stall += max(0.0, sounded - began)
        stalls.append(stall)
    first = shots[0] if shots else None
    frame = next(
        (t for k, t in shown if first and k == f"{first['sceneletId']}/{first['shotIndex']}" and t >= start), start
    )
    return frame - start, max(stalls, default=0.0), len(shots)


def measure_network(
    bundle: Path, runs: int = 3, network: Network = Network(), timeout_ms: float = 300_000
) -> NetworkFigures:
    from playwright.sync_api import sync_playwright

    media = sum(f.stat().st_size for f in (bundle / "assets").rglob("*") if f.is_file())
    firsts: list[float] = []
    stalls: list[float] = []
    shots = 0
    with _serve(bundle) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for _ in range(runs):
                first, stall, shots = _one_run(browser, url, network, timeout_ms)
                firsts.append(first)
                stalls.append(stall)
        finally:
            browser.close()
    return NetworkFigures(bundle.name, media / 1e6, firsts, stalls, shots)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: player_network.py <bundle-folder> [<bundle-folder>...]", file=sys.stderr)
        return 2
    for folder in argv:
        figures = measure_network(Path(folder).resolve(), int(os.environ.get("BENCH_REPS", "3")))
        print(
            f"{figures.bundle}: {figures.media_mb:.2f} MB media, {figures.shots} shots; "
            f"Start to first frame {figures.start_to_frame:.0f} ms {[round(v) for v in figures.start_to_frame_ms]}; "
            f"longest stall {figures.longest_stall:.0f} ms {[round(v) for v in figures.longest_stall_ms]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def network_rows(folders: str, runs: int) -> list[tuple[str, str]]:
    """(what, value) rows for ``make bench``, two per folder of ``BENCH_NETWORK_BUNDLES`` (os.pathsep-separated)."""
    rows = []
    for folder in filter(None, folders.split(os.pathsep)):
        figures = measure_network(Path(folder).resolve(), runs)
        name = f"player over 1.6 Mbps / 150 ms, {Path(folder).name} ({figures.media_mb:.1f} MB media)"
        rows.append((f"{name}: Start to first frame", f"{figures.start_to_frame:.0f} ms"))
        rows.append((f"{name}: longest stall between shots", f"{figures.longest_stall:.0f} ms"))
    return rows
