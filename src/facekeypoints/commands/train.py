"""``facekeypoints train``: train a landmark model (also under ``torchrun``)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..training.config import add_config_arguments

    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        from ..errors import FaceKeypointsError

        raise FaceKeypointsError("training needs torch: pip install 'facekeypoints[train]'") from None
    from ..training.config import config_from_args
    from ..training.loop import train

    cfg = config_from_args(args).validate()  # impossible settings refused before anything is created
    command = "facekeypoints " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        procs = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
        command = f"torchrun --nproc_per_node={procs} -m " + command
    run_dir = train(cfg, command=command)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, once, not once per process
        print(run_dir)
    return 0
