"""User mistakes end a command with one readable line, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """Something the user can fix: bad params, a missing key, corrupt input. The message says how."""


def exits_cleanly(main: Callable[[], None]) -> Callable[[], None]:
    """Run a stage or CLI entry point, turning user errors and Ctrl-C into a message and an exit code."""

    @functools.wraps(main)
    def wrapper() -> None:
        try:
            main()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: finished work is saved; run the same command again to resume", file=sys.stderr)
            sys.exit(130)

    return wrapper
