"""Ctrl-C and SIGTERM from the first instant of the process (DESIGN §4).

Until a run sets its own handlers (``cli.commands_assemble``), a signal would
end the process with a ``KeyboardInterrupt`` traceback or, for SIGTERM, with
no line and no JSON at all. These handlers raise ``Interrupted`` instead, which
the CLI reports like any interruption: one line, 130/143, and with ``--json``
one document. A signal during the imports is noted and acted on as soon as the
program is loaded (``started``). Once a run has finished, a late signal is only
noted (``settle``): what the run did is reported as it happened.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from bundler.errors import Interrupted

HANDLED = (signal.SIGINT, signal.SIGTERM)
_PROGRAMS = ("bundler", "story-bundler")  # the console scripts; `python -m bundler` installs in __main__
_started = False  # the command runs: a signal raises ``Interrupted`` so its clean-ups run
_settled = False
_pending: list[int] = []  # a signal that came while the program was still importing


def _raise(signum: int, _frame: FrameType | None) -> None:
    if _settled:
        return
    if not _started:  # modules half-imported: noted, acted on a moment later by ``started``
        _pending.append(signum)
        return
    raise Interrupted(signum)


def install() -> None:
    """Handle SIGINT/SIGTERM as above (only in the main thread of the bundler program)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED:
        signal.signal(signum, _raise)


def install_if_program() -> None:
    """``install`` when this process is the bundler command itself, never inside a host program."""
    if os.path.basename(sys.argv[0] if sys.argv else "") in _PROGRAMS:
        install()


def started() -> None:
    """The program is loaded: from now on a signal raises ``Interrupted`` (one that came earlier, now)."""
    global _started
    _started = True
    if _pending:
        raise Interrupted(_pending[0])


def is_early_handler(handler: object) -> bool:
    return handler is _raise


def settle() -> None:
    """The run's work is done: later signals no longer turn its report into an interruption."""
    global _settled
    _settled = True
