"""``facekeypoints serve``: the JSON API and the web page, run by uvicorn (needs the ``[serve]`` extra)."""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import math
import os
import sys

from . import add_detector_arguments, add_pass_arguments, check_min_face, pass_settings

HELP = "run the web app and JSON API (needs the [serve] extra)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..server.limits import MAX_PIXELS, MAX_UPLOAD_BYTES, ServerConfig

    d = ServerConfig()
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its own model (default: %(default)s)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=d.threads,
        help="worker threads per process for decoding and inference (default: %(default)s)",
    )
    parser.add_argument("--model", metavar="ONNX", help="landmark model .onnx (default: the bundled one)")
    add_detector_arguments(parser)
    add_pass_arguments(parser)
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=MAX_UPLOAD_BYTES / (1024 * 1024),
        help="largest upload in MiB; larger ones get 413 (default: %(default)g)",
    )
    parser.add_argument(
        "--max-megapixels",
        type=float,
        default=MAX_PIXELS / 1e6,
        help="largest image in megapixels, checked from the header before decoding; 413 (default: %(default)g)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=d.timeout_s,
        help="seconds one request may spend decoding and finding landmarks; 503 past it (default: %(default)g)",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help="requests that may wait for a free thread; more get 503 (default: %(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=d.header_timeout_s,
        help="seconds a request's line and headers may take to arrive; 408 and closed past it (default: %(default)g)",
    )
    parser.add_argument(
        "--body-timeout",
        type=float,
        default=d.body_timeout_s,
        help="seconds a request's body may take to arrive after its headers; 408 past it (default: %(default)g)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=d.max_connections,
        help="open connections per process; past it a new one pushes out the one that has waited longest on its "
        "client, or gets 503 when all are being answered (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="every /v1 request must send 'Authorization: Bearer KEY' with the key in FILE (one line); 401 "
        "otherwise. Also FACEKEYPOINTS_SERVE_API_KEY_FILE, or the key itself in FACEKEYPOINTS_SERVE_API_KEY. "
        "/healthz and the page stay open; the page asks for the key (default: no key, open to all)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow cross-origin requests from ORIGIN (repeatable; CORS is off by default)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _check_installed() -> None:
    from ..errors import FaceKeypointsError

    for module, package in (("fastapi", "fastapi"), ("uvicorn", "uvicorn"), ("python_multipart", "python-multipart")):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            if module == "python_multipart":
                try:  # python-multipart before 0.0.13 is imported as `multipart`
                    importlib.import_module("multipart.multipart")
                    continue
                except ModuleNotFoundError:
                    pass
            raise FaceKeypointsError(
                f"'facekeypoints serve' needs the Python package '{package}': pip install 'facekeypoints[serve]'"
            ) from None


#: Each numeric flag, with what it must be: "positive" (> 0, finite), or the smallest whole number it may be.
_NUMBERS = {
    "--workers": ("workers", 1),
    "--threads": ("threads", 1),
    "--max-queue": ("max_queue", 0),
    "--max-connections": ("max_connections", 1),
    "--max-upload-mb": ("max_upload_mb", "positive"),
    "--max-megapixels": ("max_megapixels", "positive"),
    "--timeout": ("timeout", "positive"),
    "--header-timeout": ("header_timeout", "positive"),
    "--body-timeout": ("body_timeout", "positive"),
}


def check_numbers(args: argparse.Namespace) -> None:
    """A one-line error naming the flag for any numeric setting out of its range (before anything starts)."""
    from ..errors import InputError

    for flag, (attr, rule) in _NUMBERS.items():
        value = getattr(args, attr)
        if rule == "positive":
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{flag} {value:g}: must be a positive number")
        elif value < rule:
            raise InputError(f"{flag} {value}: must be at least {rule}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name given to --host) can only be reached from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to an outside address


def _api_key_settings(args: argparse.Namespace) -> dict:
    """api_key_file / api_key for ServerConfig: the flag, else FACEKEYPOINTS_SERVE_API_KEY_FILE, else _API_KEY."""
    from ..server.limits import _ENV_PREFIX

    if args.api_key_file:
        return {"api_key_file": os.path.abspath(args.api_key_file)}
    if os.environ.get(_ENV_PREFIX + "API_KEY_FILE"):
        return {"api_key_file": os.path.abspath(os.environ[_ENV_PREFIX + "API_KEY_FILE"])}
    if os.environ.get(_ENV_PREFIX + "API_KEY") is not None:
        return {"api_key": os.environ[_ENV_PREFIX + "API_KEY"].strip()}
    return {}


def log_config(level: str) -> dict:
    """Logging for uvicorn and the app: one line per request on stderr, no access log duplicates."""
    fmt = {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": fmt},
        "handlers": {"stderr": handler},
        "loggers": {
            "facekeypoints": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def run(args: argparse.Namespace) -> int:
    from ..errors import FaceKeypointsError, InputError
    from ..server.limits import _ENV_PREFIX, ServerConfig

    _check_installed()
    import uvicorn

    from ..server.protocol import uvicorn_options

    check_min_face(args.min_face)
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: not a TCP port")
    check_numbers(args)
    try:
        config = ServerConfig(
            model=os.path.abspath(args.model) if args.model else None,
            detector=args.detector,
            min_face=args.min_face,
            **pass_settings(args),
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            max_pixels=int(args.max_megapixels * 1e6),
            timeout_s=args.timeout,
            threads=args.threads,
            max_queue=args.max_queue,
            cors_origins=tuple(args.cors_origin),
            header_timeout_s=args.header_timeout,
            body_timeout_s=args.body_timeout,
            max_connections=args.max_connections,
            **_api_key_settings(args),
        )
        has_key = config.read_api_key() is not None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if not has_key and not is_loopback(args.host):
        print(
            f"facekeypoints: warning: listening on {args.host} without an API key: anyone who can reach port "
            f"{args.port} can use the service (give one with --api-key-file FILE)",
            file=sys.stderr,
            flush=True,
        )
    # Worker processes build their app from the environment (uvicorn imports the factory by name).
    for name in ("API_KEY", "API_KEY_FILE"):  # the one chosen above goes back in; never both
        os.environ.pop(_ENV_PREFIX + name, None)
    os.environ.update(config.to_env())
    if args.workers == 1:
        from ..server.app import create_app

        app = create_app(config)  # load the model here, so a bad --model fails before listening
    else:
        from ..server.app import Engine

        Engine(config).close()  # check the model and detector once before forking workers
        app = "facekeypoints.server.app:create_app"
    print(
        f"facekeypoints: starting on http://{args.host}:{args.port}/ (API description at /openapi.json); Ctrl-C stops",
        flush=True,
    )
    try:
        uvicorn.run(
            app,
            factory=args.workers > 1,
            host=args.host,
            port=args.port,
            workers=args.workers if args.workers > 1 else None,
            log_config=log_config(args.log_level),
            access_log=False,
            server_header=False,
            **uvicorn_options(config),
        )
    except OSError as exc:
        raise FaceKeypointsError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    except SystemExit as exc:  # uvicorn exits on a start-up failure (e.g. the port is taken), after logging why
        if exc.code not in (0, None):
            raise FaceKeypointsError(f"the server on {args.host}:{args.port} could not start (see above)") from None
    return 0
