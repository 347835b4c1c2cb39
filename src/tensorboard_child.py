"""TensorBoard for the window, ending with the window's process.

`python -m src.tensorboard_child PARENT_PID [tensorboard arguments]` runs TensorBoard and
exits as soon as PARENT_PID is gone (killed, crashed, ended without its shutdown): a window
that dies without stopping its server must not leave it holding a port forever. TensorBoard's
data server follows (it dies with its parent's stdin). Portable: psutil, no signals.
"""
from __future__ import annotations

import os
import sys
import threading
import time

import psutil

_POLL_S = 1.0


def parent_gone(pid: int, created: float | None) -> bool:
    """True when the process is gone, a zombie, or its id now belongs to another process."""
    try:
        process = psutil.Process(pid)
        return (process.status() == psutil.STATUS_ZOMBIE
                or (created is not None and process.create_time() != created))
    except psutil.NoSuchProcess:
        return True


def _watch(pid: int, created: float | None) -> None:
    while not parent_gone(pid, created):
        time.sleep(_POLL_S)
    os._exit(0)


def main(argv: list[str]) -> None:
    pid = int(argv[0])
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return
    threading.Thread(target=_watch, args=(pid, created), daemon=True).start()
    from tensorboard.main import run_main

    sys.argv = ["tensorboard", *argv[1:]]
    run_main()


if __name__ == "__main__":
    main(sys.argv[1:])
