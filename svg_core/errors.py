"""One kind of user-input error, and the one way command lines report it.

Every reader that rejects a file or a value raises :class:`UserInputError` (a ``ValueError``)
whose message names the file or field and says how to fix it. Command lines wrap their
``main`` with :func:`run_cli`: such an error prints one ``error: ...`` line on stderr and
exits with status 2; ``--debug`` (or ``SVG_DEBUG=1``) shows the traceback instead.
The app turns the same errors into ``gr.Error`` in one place (``app/app.py``).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence

EXIT_USER_ERROR = 2


class UserInputError(ValueError):
    """Bad input from the user (a file, a record, a flag value); the message says which and why."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file or folder the user named is not there (still a ``FileNotFoundError`` for callers)."""


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("SVG_DEBUG", "") not in ("", "0")


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)``; user errors become one ``error: ...`` line and exit status 2.

    Args:
        main: a command line's main, taking the argument list (without ``--debug``).
        argv: arguments (default ``sys.argv[1:]``); ``--debug`` is removed before ``main`` sees it.

    Returns:
        the exit status: ``main``'s, or 2 for a ``ValueError`` (``UserInputError`` included),
        a missing file, or an unreadable (non UTF-8) file.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    args = [a for a in args if a != "--debug"]
    try:
        status = main(args)
    except (ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError, RecursionError) as err:
        if debug:
            traceback.print_exc()
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, UnicodeDecodeError):
            message = f"file is not valid UTF-8 text ({err})"
        elif isinstance(err, RecursionError):
            message = "input is nested too deeply to read"
        print(f"error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
    return 0 if status is None else int(status)
