"""``asgisec check [--env-file .env]``: the pre-deployment checklist, before anything serves.

    asgisec check [--env-file FILE] [--format text|json] [--strict] [--workers N]

Reads the process environment over the ``.env`` file (as the server would). Exit status: 0
clean (warnings allowed), 1 on any error (on any warning too with ``--strict``), 2 usage.
Secret values are never printed: messages name the variable, and for a URL only its host.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from .checklist import run_checks
from .common import error, positive_int
from .model import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

__all__ = ["SCHEMA", "register", "run_check"]

SCHEMA = "asgisec.check/1"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "check",
        help="check the deployment configuration against the guide's checklist",
        description=(
            "Check the environment (and .env) against the pre-deployment checklist: weak "
            "passwords, CORS, trusted hosts, Redis and database TLS, headers, limits, logging."
        ),
        epilog="Exit status: 0 clean, 1 errors (or warnings with --strict), 2 usage.",
    )
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="read variables from FILE; the process environment wins (default: ./.env if present)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.add_argument(
        "--workers", type=positive_int, metavar="N", help="worker processes the service will run"
    )
    parser.set_defaults(handler=run_check)


def run_check(args: argparse.Namespace) -> int:
    from ..env import read_env_file  # noqa: PLC0415

    if args.env_file is not None and not Path(args.env_file).is_file():
        error(f"check: --env-file {args.env_file!r}: no such file")
        return EXIT_USAGE
    path = Path(args.env_file if args.env_file is not None else ".env")
    values: dict[str, str] = {}
    source = "environment"
    if path.is_file():
        try:
            values.update(read_env_file(path))
        except (OSError, UnicodeDecodeError) as exc:
            error(f"check: cannot read {str(path)!r}: {type(exc).__name__}")
            return EXIT_USAGE
        source = f"environment over {path}"
    values.update(os.environ)
    findings = run_checks(values, workers=args.workers)
    errors = [f for f in findings if f.level == "error"]
    warnings = [f for f in findings if f.level == "warning"]
    failed = bool(errors) or (args.strict and bool(warnings))
    if args.format == "json":
        document = {
            "schema": SCHEMA,
            "source": source,
            "passed": not failed,
            "strict": args.strict,
            "errors": len(errors),
            "warnings": len(warnings),
            "findings": [msgspec.to_builtins(f) for f in findings],
        }
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(document), indent=2).decode())
        sys.stdout.write("\n")
    else:
        print(f"asgisec check ({source})")
        for finding in findings:
            print(f"{finding.id} {finding.level.upper()}: {finding.message}")
            print(f"    fix: {finding.fix}")
        verdict = "FAIL" if failed else "PASS"
        print(f"{verdict}: {len(errors)} error(s), {len(warnings)} warning(s)")
    sys.stdout.flush()
    return EXIT_FINDINGS if failed else EXIT_OK
