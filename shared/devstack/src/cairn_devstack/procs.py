"""Small helpers for running local stand-ins as child processes.

Shared by the broker runner, the pytest plugin and anything else in the project that
starts a server and must be sure it is up (and later gone) before moving on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = [
    "ProcessStartError",
    "free_port",
    "port_is_open",
    "python_module_args",
    "run_sync",
    "spawn",
    "terminate",
    "wait_for",
    "wait_for_port",
]

LOCALHOST = "127.0.0.1"


class ProcessStartError(RuntimeError):
    """A child process died or never became ready."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now.

    The OS picks it (bind to port 0); there is a small window in which another process
    could take it before the caller binds it, which is acceptable for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int, host: str = LOCALHOST, timeout: float = 0.2) -> bool:
    """Return True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    interval: float = 0.05,
) -> None:
    """Poll ``ready()`` until it is true, the timeout passes or ``proc`` exits.

    Raises :class:`ProcessStartError` naming ``what`` on failure; checking ``proc``
    means a crashed child fails fast instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise ProcessStartError(f"{what} exited with code {proc.returncode} before ready")
        if ready():
            return
        if time.monotonic() >= deadline:
            raise ProcessStartError(f"{what} not ready after {timeout:.1f}s")
        time.sleep(interval)


def wait_for_port(
    port: int,
    host: str = LOCALHOST,
    *,
    timeout: float = 15.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until ``host:port`` accepts connections (or raise ProcessStartError)."""
    wait_for(
        lambda: port_is_open(port, host),
        timeout=timeout,
        what=f"server on {host}:{port}",
        proc=proc,
    )


def spawn(
    args: Sequence[str],
    *,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``args`` as a child process in its own process group.

    Output goes to ``log_path`` (appended) or is discarded: a pipe nobody reads would
    eventually fill and freeze a chatty child. The own process group keeps a Ctrl-C
    meant for the parent from reaching the child first, so the parent decides the order
    in which things stop.
    """
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        out = log_path.open("ab")
    else:
        out = open(os.devnull, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(  # noqa: S603 - argv list from our own code, no shell
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    finally:
        # The child holds its own copy of the descriptor.
        out.close()


def python_module_args(module: str, *args: str) -> list[str]:
    """Command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def terminate(proc: subprocess.Popen[bytes], *, timeout: float = 5.0) -> int | None:
    """Stop ``proc``: SIGTERM, wait up to ``timeout`` s, then SIGKILL. Returns its exit code.

    Only this one process is signalled, by pid, never a name pattern.
    """
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return proc.wait(timeout=timeout)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from synchronous code and return its result.

    It runs on a fresh event loop in a worker thread, so this also works when the caller
    is itself inside a running loop (an async test calling a sync fixture helper).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
