"""The player on a big story, measured in the system Chromium (part of ``make bench``).

Opens a bundle's ``index.html`` from disk, like a viewer would, and reports:

* **time to interactive**: from navigation start to the player's ``player-ready``
  mark, set when the Start button is shown with its handler in place (it is
  hidden until then, so it works the moment it is visible);
* **longest main-thread task after that** (Long Tasks API), while the viewer
  starts, plays through scenelets at high speed, chooses, goes back to the last
  choice, leaves for the title screen and continues after a reload;
* **the first load's tasks, split in two**: Chromium's HTML parse, the long
  tasks that end before the ``player-start`` mark, i.e. before any script of
  the page runs (the parser tokenizes the page, the embedded manifest being
  one ~12 MB text token, in one to three tasks), and the longest task from
  that mark on (the player's own load work, which comes in slices), as
  tests/browser/test_network.py counts it.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from synth import Shape

PLAYER = Shape(
    name="10k scenelets / 30k shots",
    scenelets=10_000,
    shots_per_scenelet=3,
    branching=2,
    chain=4,
    image_bytes=1_000,
    audio_bytes=1_000,
    music_bytes=50_000,
    music_cues=2,
    media_shots=3,
    narration_lines=1,
)
CHROMIUM = os.environ.get("BUNDLER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
WATCH_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push([e.startTime, e.duration]);
}).observe({type: 'longtask', buffered: true});
"""
READY = "() => performance.getEntriesByName('player-ready').length > 0"
# [longest parse task, all parse tasks, longest task from the player's first mark]
FIRST_LOAD = """() => {
  const start = performance.getEntriesByName('player-start')[0].startTime;
  const parse = window.__longTasks.filter(([at, ms]) => at + ms <= start).map(([, ms]) => ms);
  const own = window.__longTasks.filter(([at, ms]) => at + ms > start).map(([, ms]) => ms);
  return [Math.max(0, ...parse), parse.reduce((a, b) => a + b, 0), Math.max(0, ...own)];
}"""


@dataclass(frozen=True)
class PlayerFigures:
    html_mb: float
    interactive_ms: list[float]  # one per repetition
    longest_task_after_ms: list[float]  # longest main-thread task after interactive, per repetition
    tasks_over_200_ms: int  # across all repetitions
    parse_task_ms: list[float]  # Chromium's longest parse task of the first load, per repetition
    parse_total_ms: list[float]  # all its long parse tasks together
    longest_own_task_ms: list[float]  # longest task from the player's first mark, first load

    @property
    def parse_task(self) -> float:
        return statistics.median(self.parse_task_ms)

    @property
    def longest_own_task(self) -> float:
        return max(self.longest_own_task_ms)

    @property
    def interactive(self) -> float:
        return statistics.median(self.interactive_ms)

    @property
    def longest_task(self) -> float:
        return max(self.longest_task_after_ms)


def _state(page: object, condition: str, timeout: float = 60_000) -> None:
    page.wait_for_function(  # type: ignore[attr-defined]
        f"() => {{ const s = window.__player.state(); return {condition}; }}", timeout=timeout
    )


def measure_player(index_html: Path, reps: int) -> PlayerFigures:
    from playwright.sync_api import sync_playwright

    url = index_html.as_uri() + "?speed=40"
    interactive: list[float] = []
    longest: list[float] = []
    over = 0
    first_loads: list[list[float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(reps):
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(WATCH_TASKS)
                page = context.new_page()
                page.goto(url, wait_until="commit")
                page.wait_for_function(READY, timeout=60_000)
                ready = page.evaluate("performance.getEntriesByName('player-ready')[0].startTime")
                interactive.append(ready)
                page.wait_for_timeout(300)  # long task entries are reported after the task
                first_loads.append(page.evaluate(FIRST_LOAD))
                # a viewer's session: start, play on, choose, go back, leave, come back
                page.click("#start-button")
                _state(page, "s.screen === 'choice'")
                page.keyboard.press("1")
                _state(page, "s.screen === 'playing' && s.path.length > 5")
                page.keyboard.press("ArrowRight")
                page.keyboard.press("b")
                _state(page, "s.screen === 'choice'")
                page.click("#home-button")
                page.click("#confirm-leave")
                _state(page, "s.screen === 'start'")
                tasks = page.evaluate("window.__longTasks")
                page.reload(wait_until="commit")
                page.wait_for_function(READY, timeout=60_000)
                reloaded = page.evaluate("performance.getEntriesByName('player-ready')[0].startTime")
                page.click("#continue-button")
                _state(page, "s.screen === 'choice'")  # left on the choice it went back to: resumed there
                page.wait_for_timeout(500)
                tasks_after = [d for start, d in tasks if start >= ready]
                tasks_after += [d for start, d in page.evaluate("window.__longTasks") if start >= reloaded]
                longest.append(max(tasks_after, default=0.0))
                over += sum(1 for d in tasks_after if d > 200)
                context.close()
        finally:
            browser.close()
    parse, total, own = ([row[n] for row in first_loads] for n in range(3))
    return PlayerFigures(index_html.stat().st_size / 1e6, interactive, longest, over, parse, total, own)
