"""The ``asgisec`` command: serve any ASGI app secured, and show the effective configuration.

    asgisec serve MODULE:APP [--host H] [--port P] [--ssl-certfile F --ssl-keyfile F]
                             [--env-file .env] [--workers N]
    asgisec demo [same options]          # = asgisec serve asgisec.demo:app
    asgisec env [--env-file F]           # the configuration summary, secrets masked
    asgisec env --markdown               # the README's table of every variable

Start-up is ordered so that nothing serves until everything an operator can get wrong has been
checked: the configuration (environment over ``.env``), uvicorn's presence, the TLS files, the
application's import, then the middleware itself. Each of those failures is one line on stderr
and exit status 2 (argparse's code for bad usage), never a traceback. This module is the only
place that turns errors into exit codes; the library never calls ``sys.exit``.

uvicorn and rich come from the ``tools`` extra and are imported only when needed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import ssl
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from . import __version__
from .config import SecurityConfig
from .errors import BackendError, ConfigError
from .middleware import ASGIApp, SecurityMiddleware, secure

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILURE = 1  # the rate-limit storage failed at start-up: not a usage mistake
EXIT_STARTUP = 2  # argparse exits 2 on bad usage; a bad deployment is the same kind of mistake

DEMO_APP = "asgisec.demo:app"
DEFAULT_ENV_FILE = ".env"
INSTALL_TOOLS = 'pip install "asgisec[tools]"'

# How `serve --workers N` tells each uvicorn worker process what to build (see _worker_app).
APP_VARIABLE = "ASGISEC_APP"
ENV_FILE_VARIABLE = "ASGISEC_ENV_FILE"
WORKERS_VARIABLE = "ASGISEC_WORKERS"
WORKER_FACTORY = "asgisec.cli:_worker_app"


# The operator tools, one module each. Each has ``register(commands)``, which adds its
# subparser with ``set_defaults(handler=...)``; a handler takes the parsed arguments and returns
# the exit status. Tool modules import their heavy dependencies (httpx, rich) inside handlers.
TOOL_MODULES: tuple[str, ...] = (
    "asgisec.tools.audit",
    "asgisec.tools.monitor",
    "asgisec.tools.check",
    "asgisec.bans_cli",
    "asgisec.bench",
)


class StartupError(Exception):
    """A problem the operator must fix before anything can serve: one line, exit status 2."""


# --------------------------------------------------------------------------- loading


def load_config(env_file: str | None) -> SecurityConfig:
    """``SecurityConfig.from_env`` over ``env_file`` (default ``./.env`` if it exists).

    A file named explicitly must exist: a typo in ``--env-file`` would otherwise serve with
    the defaults and nobody would notice.
    """
    if env_file is not None and not Path(env_file).is_file():
        raise StartupError(f"--env-file {env_file!r}: no such file")
    path = DEFAULT_ENV_FILE if env_file is None else env_file
    try:
        return SecurityConfig.from_env(env_file=path)
    except ConfigError as exc:
        if exc.variable not in os.environ and Path(path).is_file():
            from .env import read_env_file  # noqa: PLC0415 - only needed to explain an error

            if exc.variable in read_env_file(path):
                exc.add_note(f"(set in {path})")
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"cannot read {path!r}: {exc}") from None


def import_app(target: str) -> ASGIApp:
    """Import ``module:attr`` or ``module:attr.sub``, with the working directory importable."""
    module_name, colon, attributes = target.partition(":")
    if not colon or not module_name or not attributes:
        raise StartupError(f"app {target!r} must be written MODULE:APP, e.g. myproject.main:app")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as uvicorn does: `asgisec serve main:app` finds ./main.py
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise StartupError(
                f"cannot import {target!r}: no module named {missing!r} "
                f"(searched the working directory {cwd} and sys.path)"
            ) from None
        raise StartupError(
            f"cannot import {target!r}: {exc} (while importing {module_name!r})"
        ) from None
    except ImportError as exc:
        raise StartupError(f"cannot import {target!r}: {exc}") from None
    app: Any = module
    for attribute in attributes.split("."):
        try:
            app = getattr(app, attribute)
        except AttributeError:
            raise StartupError(
                f"cannot import {target!r}: {module_name!r} has no attribute {attributes!r}"
            ) from None
    if isinstance(app, SecurityMiddleware):
        # Wrapping twice would count every request twice against the rate limits.
        raise StartupError(
            f"{target!r} is already wrapped by asgisec; serve the inner app instead: "
            f"asgisec serve {target}.app"
        )
    if not callable(app):
        raise StartupError(f"{target!r} is a {type(app).__name__}, not an ASGI application")
    return cast(ASGIApp, app)


def _import_uvicorn() -> ModuleType:
    try:
        import uvicorn  # noqa: PLC0415 - optional: the `tools` extra
    except ImportError:
        raise StartupError(f"serving needs uvicorn: {INSTALL_TOOLS}") from None
    return uvicorn


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load here instead of prompting on the terminal


def _check_tls(certfile: str | None, keyfile: str | None) -> None:
    """Load the certificate once, so a bad file is one line now, not a traceback in uvicorn."""
    if keyfile is not None and certfile is None:
        raise StartupError("--ssl-keyfile needs --ssl-certfile")
    if certfile is None:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(certfile, keyfile, password=_no_password)
    except (OSError, ssl.SSLError) as exc:
        files = certfile if keyfile is None else f"{certfile} and {keyfile}"
        raise StartupError(
            f"cannot load the TLS certificate from {files}: {exc} "
            "(an unencrypted PEM certificate and key are expected)"
        ) from None


def _worker_app() -> ASGIApp:
    """The app factory each ``serve --workers N`` process calls (uvicorn needs an import string).

    The parent has already checked the configuration and the import, and put the target in
    the environment every worker inherits; each worker builds its own middleware from it.
    """
    target = os.environ.get(APP_VARIABLE)
    if not target:
        raise RuntimeError(f"{APP_VARIABLE} is not set; this factory is for `asgisec serve`")
    # The parent checked an explicit --env-file exists; the default ./.env may be absent.
    config = SecurityConfig.from_env(env_file=os.environ.get(ENV_FILE_VARIABLE) or None)
    return secure(import_app(target), config)


# --------------------------------------------------------------------------- output


def _error(message: str) -> None:
    print(f"asgisec: {message}", file=sys.stderr, flush=True)


def _print_summary(title: str, config: SecurityConfig) -> None:
    """The title, then one row per variable (secrets masked by ``summary()``).

    A ``*`` marks values that differ from the defaults: what this deployment changed. On a
    terminal rich draws a table; elsewhere (logs, pipes, rich not installed) each variable is
    one plain line, never folded, so that ``grep`` finds it.
    """
    defaults = dict(SecurityConfig().summary())
    rows = [
        ("*" if defaults.get(name) != value else "", name, value)
        for name, value in config.summary()
    ]
    footer = "* differs from the default"
    console = _rich_console()
    if console is None:
        width = max(len(name) for _, name, _ in rows)
        lines = [title, ""]
        lines += [f" {mark:1} {name:<{width}}  {value}".rstrip() for mark, name, value in rows]
        print("\n".join([*lines, "", footer]), flush=True)
        return
    from rich.table import Table  # noqa: PLC0415 - optional: the `tools` extra
    from rich.text import Text  # noqa: PLC0415

    console.print(Text(title, style="bold"))
    table = Table(box=None, pad_edge=False, caption=footer)
    table.add_column("", no_wrap=True, style="bold cyan")
    table.add_column("Variable", no_wrap=True)
    table.add_column("Value", overflow="fold")  # fold, never hide a value behind an ellipsis
    for mark, name, value in rows:
        style = "bold cyan" if mark else ""
        table.add_row(mark, Text(name, style=style), Text(value, style=style))
    console.print(table)
    sys.stdout.flush()


def _rich_console() -> Any:
    """A rich ``Console`` when rich is installed and stdout is a terminal, else None."""
    try:
        from rich.console import Console  # noqa: PLC0415 - optional: the `tools` extra
    except ImportError:
        return None
    console = Console(highlight=False)
    return console if console.is_terminal else None


def _url(host: str, port: int, tls: bool) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


# --------------------------------------------------------------------------- commands


def _serve(args: argparse.Namespace) -> int:
    return _run_server(args.app, args)


_LOOPBACK_NAMES = "127.0.0.1,localhost,[::1]"


def _demo(args: argparse.Namespace) -> int:
    """``serve asgisec.demo:app``, hardened out of the box: when the operator has set no
    TRUSTED_HOSTS (neither in the environment nor in the env file), the demo trusts the
    address it serves, so ``Host: evil.example`` is refused from the first request. A
    wildcard bind (0.0.0.0, ::) names no host to trust: then the usual warning stands."""
    env_file = DEFAULT_ENV_FILE if args.env_file is None else args.env_file
    note = ""
    if "TRUSTED_HOSTS" not in os.environ and not _in_env_file("TRUSTED_HOSTS", env_file):
        trusted = _demo_hosts(args.host)
        if trusted:
            os.environ["TRUSTED_HOSTS"] = trusted  # the workers, if any, inherit it
            note = f"TRUSTED_HOSTS is not set: the demo trusts the address it serves ({trusted})."
    return _run_server(DEMO_APP, args, note=note)


def _demo_hosts(bind: str) -> str:
    """The names a client of ``bind`` sends in Host; empty for a wildcard address."""
    if bind in ("0.0.0.0", "::", "[::]", ""):  # noqa: S104 - recognising a wildcard, not binding
        return ""
    if bind in ("127.0.0.1", "localhost", "::1", "[::1]"):
        return _LOOPBACK_NAMES
    return f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind


def _in_env_file(variable: str, env_file: str) -> bool:
    if not Path(env_file).is_file():
        return False
    from .env import read_env_file  # noqa: PLC0415 - only the demo asks

    try:
        return variable in read_env_file(env_file)
    except (OSError, UnicodeDecodeError):
        return False  # load_config reports an unreadable file with its own message


def _run_server(target: str, args: argparse.Namespace, *, note: str = "") -> int:
    config = load_config(args.env_file)  # first: a bad value stops everything, exit 2
    if note:  # only once the configuration is known good: an error stays one message
        print(note, file=sys.stderr)
    uvicorn = _import_uvicorn()
    _check_tls(args.ssl_certfile, args.ssl_keyfile)
    app = secure(import_app(target), config)  # builds the backend: its errors surface here too

    tls = args.ssl_certfile is not None
    workers: int = args.workers
    processes = f"{workers} worker processes" if workers > 1 else "1 process"
    url = _url(args.host, args.port, tls)
    _print_summary(f"asgisec {__version__}: serving {target} at {url} ({processes})", config)

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "ssl_certfile": args.ssl_certfile,
        "ssl_keyfile": args.ssl_keyfile,
        "lifespan": "auto",
        "server_header": False,  # no "server: uvicorn": don't advertise the stack
        "date_header": True,
        # asgisec decides which proxies to believe (TRUSTED_PROXIES); uvicorn must not rewrite
        # the client address from X-Forwarded-For before asgisec sees the real peer.
        "proxy_headers": False,
        # asgisec writes its own request line (redacted: uvicorn's would show ?token=...).
        "access_log": not config.logging.enable_request_logging,
    }
    if workers > 1:
        # The middleware in each worker warns about memory:// buckets when it sees this.
        os.environ[WORKERS_VARIABLE] = str(workers)
        os.environ[APP_VARIABLE] = target
        env_file = DEFAULT_ENV_FILE if args.env_file is None else args.env_file
        os.environ[ENV_FILE_VARIABLE] = str(Path(env_file).resolve())
        uvicorn.run(WORKER_FACTORY, factory=True, workers=workers, **options)
    else:
        uvicorn.run(app, **options)
    return EXIT_OK


def _env(args: argparse.Namespace) -> int:
    if args.markdown:
        from .env import env_reference  # noqa: PLC0415 - only this command needs it

        sys.stdout.write(env_reference())
        return EXIT_OK
    config = load_config(args.env_file)
    env_file = DEFAULT_ENV_FILE if args.env_file is None else args.env_file
    source = f"environment over {env_file}" if Path(env_file).is_file() else "environment"
    _print_summary(f"asgisec {__version__}: effective configuration ({source})", config)
    return EXIT_OK


# --------------------------------------------------------------------------- parsing


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ≥ 1")
    return int(text)


def _env_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="read variables from FILE; the process environment wins (default: ./.env if present)",
    )


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=_port, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate")
    parser.add_argument("--ssl-keyfile", metavar="FILE", help="the certificate's private key")
    _env_file_option(parser)
    parser.add_argument(
        "--workers",
        type=_positive,
        default=1,
        metavar="N",
        help="worker processes (default: 1); with more than one, use Redis for rate limits",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asgisec",
        description="Serve any ASGI app behind asgisec's security middleware.",
        epilog="Configuration comes from the environment and ./.env: see `asgisec env`.",
    )
    parser.add_argument("--version", action="version", version=f"asgisec {__version__}")
    # One subparser per command: serve, demo and env here, the operator tools from TOOL_MODULES.
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="serve MODULE:APP wrapped by asgisec.secure() under uvicorn",
        description="Serve an ASGI app wrapped by asgisec.secure() under uvicorn.",
    )
    serve.add_argument("app", metavar="MODULE:APP", help="e.g. myproject.main:app")
    _server_options(serve)
    serve.set_defaults(handler=_serve)

    demo = commands.add_parser(
        "demo",
        help=f"serve the demo API ({DEMO_APP}) secured",
        description=f"Serve the demo API, i.e. `asgisec serve {DEMO_APP}`.",
    )
    _server_options(demo)
    demo.set_defaults(handler=_demo)

    env = commands.add_parser(
        "env",
        aliases=["config"],
        help="print the effective configuration (secrets masked)",
        description="Print the configuration asgisec would run with, secrets masked.",
    )
    _env_file_option(env)
    env.add_argument(
        "--markdown",
        action="store_true",
        help="print the reference table of every variable instead (as in the README)",
    )
    env.set_defaults(handler=_env)

    for name in TOOL_MODULES:
        tool = importlib.import_module(name)
        tool.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    args = build_parser().parse_args(argv)
    handler = cast(Callable[[argparse.Namespace], int], args.handler)
    try:
        return handler(args)
    except ConfigError as exc:
        notes = " ".join(getattr(exc, "__notes__", ()))
        _error(f"configuration error: {exc}" + (f" {notes}" if notes else ""))
    except StartupError as exc:
        _error(str(exc))
    except BackendError as exc:
        _error(f"rate-limit storage error: {exc}")
        return EXIT_FAILURE
    return EXIT_STARTUP
