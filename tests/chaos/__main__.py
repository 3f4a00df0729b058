"""``python -m tests.chaos --lifecycles N --seed S``: run the chaos harness, print the
report, exit non-zero on any violation."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from tests.chaos.harness import Report, run


def main() -> int:
    parser = argparse.ArgumentParser(prog="make chaos")
    parser.add_argument("--lifecycles", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=12)
    parser.add_argument("--no-faults", action="store_true", help="the same load, no faults")
    parser.add_argument(
        "--fault-interval",
        type=float,
        default=1.0,
        help="mean seconds between faults (exponentially distributed)",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where logs go (default: a temporary folder)"
    )
    parser.add_argument(
        "--keep-on-failure",
        action="store_true",
        help="keep the run's databases when it fails (their names are printed)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the services' log level (INFO for a post-mortem; it costs some CPU)",
    )
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cairn-chaos-"))
    print(f"chaos: {args.lifecycles} lifecycles, seed {args.seed}; logs in {workdir}", flush=True)

    async def interruptible() -> Report:
        # Ctrl-C (often delivered twice: to uv and, forwarded, to us) or SIGTERM cancels
        # the run once; later signals are ignored so that the harness can stop the stack
        # and drop its databases instead of leaving them behind.
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()

        def stop() -> None:
            if not task.cancelling():
                print(
                    "\ninterrupted: stopping the stack (its databases are dropped unless kept)",
                    flush=True,
                )
                task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        return await run(
            args.lifecycles,
            args.seed,
            concurrency=args.concurrency,
            workdir=workdir,
            faults=not args.no_faults,
            fault_interval_s=args.fault_interval,
            keep_on_failure=args.keep_on_failure,
            log_level=args.log_level,
        )

    try:
        report = asyncio.run(interruptible())
    except asyncio.CancelledError:
        return 130
    print(report.render(), flush=True)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
