"""After Ctrl-C or SIGTERM a run stops at its next chunk; a request to a store that has stopped
answering has no next chunk. So the first signal also starts a short grace period: a run
still going when it ends abandons its requests in flight and exits (128 + the signal) at once.
Nothing is left half-published: the bucket pointer is written last, and local staging and
scratch sit under run locks, removed by the next run."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from bundler.cli.common import Output, emit_json, stderr_console

GRACE_S = 1.5  # the run must be gone within 2 s of the signal


class Grace:
    def __init__(self, output: Output, context: dict[str, Any]) -> None:
        self.output = output
        self.context = context
        self.lock = threading.Lock()
        self.done = False
        self.timer: threading.Timer | None = None

    def start(self, signum: int) -> None:
        if self.timer is None:
            self.timer = threading.Timer(GRACE_S, self._give_up, (signum,))
            self.timer.daemon = True
            self.timer.start()

    def finish(self) -> None:
        """The run ended by itself: it reports on its own."""
        with self.lock:
            self.done = True
            if self.timer is not None:
                self.timer.cancel()

    def _give_up(self, signum: int) -> None:
        with self.lock:
            if self.done:
                return
            message = "interrupted; requests in flight abandoned (the store is not answering)"
            stderr_console().print(f"[bold red]{message}[/]")
            if self.output.json:
                emit_json({"ok": False, **self.context, "error": {"exitCode": 128 + signum, "message": message}})
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(128 + signum)  # worker threads blocked on the network would hold a normal exit
