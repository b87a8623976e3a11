"""``python -m shmbridge`` and the ``shmbridge`` console script: the ``shmbridge`` command.

There is one command (docs/CLI.md): the Rust ``shmbridge-cli`` crate, which the extension
runs (:func:`shmbridge._native.cli_main`). Same subcommands, options, messages and exit codes
as the ``shmbridge`` binary, because it is the same code.

Python keeps its own signal handling while the command runs: the command polls it, so Ctrl-C
stops a transfer cleanly (a sender removes its segment, a receiver leaves its target
untouched) and the exit code is 130. SIGTERM is routed to the same handler for the run, as the
binary treats both alike.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, List, Optional, Sequence

from . import _native

__all__: List[str] = ["main"]


def _install_interrupt_handlers() -> List[Any]:
    """Route SIGINT and SIGTERM to ``KeyboardInterrupt`` (main thread only, where Python
    delivers signals); returns what to restore."""
    if threading.current_thread() is not threading.main_thread():
        return []
    saved = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        saved.append((sig, signal.getsignal(sig)))
        signal.signal(sig, signal.default_int_handler)
    return saved


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``shmbridge`` command with ``argv`` (default: ``sys.argv[1:]``); return its exit
    code. Output goes to file descriptors 1 and 2, as from the binary."""
    args = ["shmbridge", *(sys.argv[1:] if argv is None else argv)]
    cli_main = getattr(_native, "cli_main", None)
    if cli_main is None:
        print(
            "shmbridge: this build of the extension has no command line "
            "(built without the 'cli' cargo feature)",
            file=sys.stderr,
        )
        return 1
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = _install_interrupt_handlers()
    try:
        code: int = cli_main(args)
    except KeyboardInterrupt:
        # A signal that came before the command started (or after it returned): nothing
        # was begun or everything is finished, so this is a clean stop too.
        print("shmbridge: interrupted (Ctrl-C or SIGTERM)", file=sys.stderr)
        return 130
    finally:
        for sig, handler in saved:
            signal.signal(sig, handler)
    return code


if __name__ == "__main__":
    sys.exit(main())
