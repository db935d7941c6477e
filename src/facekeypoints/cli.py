"""``facekeypoints <verb> ...``: the command line.

Each verb is a module ``facekeypoints.commands.<verb>`` with
``add_arguments(parser)`` and ``run(args) -> int``. Only the invoked verb's
module is imported, so ``facekeypoints demo`` never loads torch; ``--help``
lists the verbs from :data:`VERBS` without importing any of them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from . import __version__
from .errors import FaceKeypointsError

PROG = "facekeypoints"

#: Every verb and its one-line help, in the order ``--help`` shows them. Verbs
#: whose module is not in this installation yet are left out of the listing.
VERBS: dict[str, str] = {
    "demo": "run on a sample photo and write the annotated picture",
    "detect": "find faces and their 68 landmarks in photos (annotated pictures, JSON)",
    "video": "landmarks on a video file or webcam, tracked and smoothed",
    "filter": "put an overlay (sunglasses, moustache, any picture) on every face",
    "align": "cut out faces aligned by their eyes",
    "train": "train a landmark model (needs the [train] extra)",
    "evaluate": "measure a model's accuracy (NME, FR, AUC) on a test set",
    "export": "export a training checkpoint to ONNX with its metadata",
    "data": "download and check the training and test data",
    "serve": "run the web app and JSON API (needs the [serve] extra)",
    "bench": "accuracy and speed side by side with other landmark detectors",
}

#: Optional dependencies and the extra that installs them.
_EXTRAS = {"torch": "train", "onnx": "train", "fastapi": "serve", "uvicorn": "serve", "multipart": "serve"}


def _module_name(verb: str) -> str:
    return f"{__package__}.commands.{verb}"


def available_verbs() -> list[str]:
    """The verbs of :data:`VERBS` whose module exists (found without importing it)."""
    out = []
    for verb in VERBS:
        try:
            if importlib.util.find_spec(_module_name(verb)) is not None:
                out.append(verb)
        except (ImportError, ValueError):
            pass
    return out


def missing_extra(verb: str, exc: ModuleNotFoundError) -> FaceKeypointsError | None:
    """The one-line error for ``exc`` when it is an optional dependency that an extra installs
    ("'facekeypoints export' needs the Python package 'torch': pip install ..."), else None."""
    top = (exc.name or "").split(".")[0]
    if top not in _EXTRAS:
        return None
    return FaceKeypointsError(
        f"'{PROG} {verb}' needs the Python package '{top}': pip install 'facekeypoints[{_EXTRAS[top]}]'"
    )


def _import_verb(verb: str):
    try:
        return importlib.import_module(_module_name(verb))
    except ModuleNotFoundError as exc:
        if exc.name == _module_name(verb):
            raise FaceKeypointsError(f"the '{verb}' command is not part of this installation") from None
        error = missing_extra(verb, exc)
        if error is not None:
            raise error from None
        raise


def _find_verb(argv: Sequence[str]) -> str | None:
    """The verb: the first argument that is not an option (the top level has no valued options)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


_CONVENTION_NAMES = {"ibug": "iBUG 300-W", "udacity": "Udacity"}


def version_text() -> str:
    """``facekeypoints X.Y.Z`` and the bundled model's name, version and landmark convention (two lines),
    read from the model's metadata without loading ONNX Runtime."""
    from .runtime import DEFAULT_MODEL, read_metadata

    try:
        meta = read_metadata(DEFAULT_MODEL)
        convention = meta.get("convention", "udacity")  # models before v7 answered in the Udacity labels'
        model = (
            f"model {meta.get('name', DEFAULT_MODEL.stem)} version {meta.get('version', '?')}"
            f" ({meta.get('arch', '?')}, 68 points, {_CONVENTION_NAMES.get(convention, convention)} convention)"
        )
    except FaceKeypointsError as exc:
        model = f"model: {exc}"
    return f"{PROG} {__version__}\n{model}"


class _VersionAction(argparse.Action):
    """``--version``: print :func:`version_text` as it is (argparse's own action re-wraps lines) and exit."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings=option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def build_parser(verb: str | None = None, module=None) -> argparse.ArgumentParser:
    """The parser; the subparser of ``verb`` gets its module's arguments."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="68-point facial landmarks for images, videos and webcams.",
        epilog=f"Run '{PROG} VERB --help' for a verb's options.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the package version and the bundled model's, and exit"
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", title="verbs")
    sub.required = True
    for name in available_verbs():
        p = sub.add_parser(name, help=VERBS[name], description=VERBS[name])
        if name == verb and module is not None:
            module.add_arguments(p)
    return parser


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 some inputs failed, 2 usage/user error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        verb = _find_verb(argv)
        module = _import_verb(verb) if verb in VERBS else None
        parser = build_parser(verb, module)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already printed by argparse
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        return int(module.run(args) or 0)
    except FaceKeypointsError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `... | head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
