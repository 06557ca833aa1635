"""One error hierarchy; the CLI maps it to exit codes in one place (``cli.common.reported_errors``).

The library raises these and never prints or exits.
"""

from __future__ import annotations


class BundlerError(Exception):
    """Base class. ``exit_code`` is the documented process exit code (docs/design.md §4)."""

    exit_code = 70


class InputError(BundlerError):
    """The story (or a seed file) cannot be processed: exit 1."""

    exit_code = 1


class MediaChangedError(InputError):
    """A source file changed (or vanished) between the check and the copy: a story problem.

    ``target``: the bundle path of the file concerned, so the report can name its scenelet and shot."""

    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.target = target


class StoryNotFoundError(InputError):
    def __init__(self, story_id: str) -> None:
        super().__init__(f"Story {story_id} was not found.")
        self.story_id = story_id


class UsageError(BundlerError):
    """Bad arguments: exit 2."""

    exit_code = 2


class EnvError(BundlerError):
    """The environment is wrong (database, assets root, output location): exit 3."""

    exit_code = 3


class DatabaseError(EnvError):
    pass


class OutputExistsError(EnvError):
    pass


class BundleUnreadableError(EnvError):
    """``verify`` could not read the bundle at all: exit 3."""


class Interrupted(BundlerError):
    """The run was stopped by a signal (Ctrl-C, SIGTERM): exit 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__("interrupted; nothing was changed")
        self.exit_code = 128 + signum
        self.signum = signum
