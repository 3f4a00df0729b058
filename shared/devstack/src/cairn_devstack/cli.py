"""``cairn-devstack``: run one local stand-in in the foreground (for ``make run``/honcho).

Subcommands ``broker``, ``stripe`` and ``mailsink`` run until SIGINT/SIGTERM, stop
their children and exit 0; ``topics`` creates topics on a running broker and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

__all__ = ["main", "parse_topic_spec"]


def _cmd_broker(args: argparse.Namespace) -> int:
    from cairn_devstack.broker import start_broker
    from cairn_devstack.procs import terminate

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log_path = Path(args.log_file) if args.log_file else None
    proc = start_broker(args.port, host=args.host, log_path=log_path)
    print(f"tansu broker on {args.host}:{args.port} (pid {proc.pid})", file=sys.stderr, flush=True)
    try:
        while not stop.is_set():
            if proc.poll() is not None:
                print(f"broker exited with code {proc.returncode}", file=sys.stderr)
                return proc.returncode or 1
            stop.wait(0.5)
    finally:
        terminate(proc)
    return 0


def _cmd_stripe(args: argparse.Namespace) -> int:
    from cairn_devstack.stripe.app import serve

    serve(
        args.port,
        Path(args.data_dir),
        host=args.host,
        from_scratch=args.from_scratch,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        quiet=args.quiet,
    )
    return 0


def _cmd_mailsink(args: argparse.Namespace) -> int:
    from cairn_devstack.mailsink.server import serve

    data_dir = Path(args.data_dir) if args.data_dir else None
    serve(args.smtp_port, args.http_port, data_dir, host=args.host)
    return 0


def parse_topic_spec(spec: str) -> tuple[str, int, bool]:
    """``name[:partitions[:compact]]`` -> (name, partitions, compacted)."""
    parts = spec.split(":")
    if not parts[0] or len(parts) > 3:
        raise argparse.ArgumentTypeError(f"bad topic spec {spec!r}")
    try:
        partitions = int(parts[1]) if len(parts) > 1 and parts[1] else 1
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad partition count in {spec!r}") from None
    if partitions < 1:
        raise argparse.ArgumentTypeError(f"partitions must be >= 1 in {spec!r}")
    if len(parts) == 3 and parts[2] not in ("compact", ""):
        raise argparse.ArgumentTypeError(f"third field must be 'compact' in {spec!r}")
    return parts[0], partitions, len(parts) == 3 and parts[2] == "compact"


def _cmd_topics(args: argparse.Namespace) -> int:
    from cairn_devstack.broker import create_topics

    specs: list[tuple[str, int, bool]] = args.topics
    topics = {name: partitions for name, partitions, _ in specs}
    compacted = {name for name, _, compact in specs if compact} | set(args.compacted)
    asyncio.run(create_topics(args.bootstrap, topics, compacted))
    for name, partitions in topics.items():
        policy = " (compacted)" if name in compacted else ""
        print(f"topic {name}: {partitions} partition(s){policy}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cairn-devstack", description="Cairn's local infrastructure stand-ins."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    broker = sub.add_parser("broker", help="memory-only tansu Kafka broker")
    broker.add_argument("--port", type=int, default=9092)
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument("--log-file", help="append tansu's output here (default: discard)")
    broker.set_defaults(func=_cmd_broker)

    stripe = sub.add_parser("stripe", help="localstripe + Connect extension")
    stripe.add_argument("--port", type=int, default=8420)
    stripe.add_argument("--host", default="127.0.0.1")
    stripe.add_argument("--data-dir", default=".data/stripe")
    stripe.add_argument("--from-scratch", action="store_true", help="start with no objects")
    stripe.add_argument("--webhook-url", help="register this webhook endpoint at start")
    stripe.add_argument("--webhook-secret", help="signing secret for --webhook-url")
    stripe.add_argument("--quiet", action="store_true", help="no access log")
    stripe.set_defaults(func=_cmd_stripe)

    mail = sub.add_parser("mailsink", help="SMTP sink with a web page")
    mail.add_argument("--smtp-port", type=int, default=1025)
    mail.add_argument("--http-port", type=int, default=8025)
    mail.add_argument("--host", default="127.0.0.1")
    mail.add_argument("--data-dir", help="keep caught mail in DIR/messages.jsonl")
    mail.set_defaults(func=_cmd_mailsink)

    topics = sub.add_parser("topics", help="create topics (idempotent) and exit")
    topics.add_argument("--bootstrap", default="127.0.0.1:9092")
    topics.add_argument(
        "topics", nargs="+", type=parse_topic_spec, metavar="NAME[:PARTITIONS[:compact]]"
    )
    topics.add_argument("--compacted", action="append", default=[], metavar="NAME")
    topics.set_defaults(func=_cmd_topics)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cairn-devstack`` console script."""
    args = _parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
