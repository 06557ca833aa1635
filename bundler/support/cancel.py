"""Stopping a run early, cleanly: a flag the CLI sets on Ctrl-C or SIGTERM.

The library polls it between stories, between chunks of every file it copies
or archives, and right before publishing; it never stops inside the publish
step itself, so a bundle and its archive are replaced together or not at all.
"""

from __future__ import annotations

import threading

from bundler.errors import Interrupted


class Cancellation:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def cancel(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def stop_if_cancelled(self) -> None:
        """Raise ``Interrupted`` once the run was asked to stop."""
        if self._event.is_set():
            raise Interrupted(self.signum or 2)


def stop_if_cancelled(cancel: Cancellation | None) -> None:
    if cancel is not None:
        cancel.stop_if_cancelled()
