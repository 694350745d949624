"""User mistakes end a command with one readable line, never a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """Something the user can fix: bad params, a missing key, corrupt input. The message says how."""


def exits_cleanly(main: Callable[[], None] | None = None, *, takes_arguments: bool = False):
    """Run a stage or CLI entry point, turning user errors and Ctrl-C into a message and an exit code.

    An entry point that `takes_arguments` parses them itself; any other refuses them rather than run
    (`python stages/sft.py --help` would otherwise train), and prints its docstring for `-h`/`--help`.
    """
    if main is None:
        return functools.partial(exits_cleanly, takes_arguments=takes_arguments)

    @functools.wraps(main)
    def wrapper() -> None:
        given = sys.argv[1:]
        if given and not takes_arguments:
            if given[0] in ("-h", "--help"):
                print((main.__globals__.get("__doc__") or "").strip())
                sys.exit(0)
            print(f"error: {sys.argv[0]} takes no arguments (got: {' '.join(given)}); it reads params.yaml", file=sys.stderr)
            sys.exit(2)
        try:
            main()
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: finished work is saved; run the same command again to resume", file=sys.stderr)
            sys.exit(130)

    return wrapper
