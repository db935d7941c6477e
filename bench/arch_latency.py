"""Latency of every registered architecture (random weights), as the runtime runs it.

    python bench/arch_latency.py [--arch pip-s pip-s2] [--repeats 5] [--out bench/results]

Each model is exported to ONNX with its decode (``export.onnx_bytes``, what
``facekeypoints export`` writes) and timed in ONNX Runtime with batch 1 and one thread: the best of ``--repeats``
rounds of 500 runs, after 200 warm-up runs. Weights do not change the time, so no
training is needed to see whether a design fits the 0.7 ms budget. Run it on a quiet
machine: anything else on the CPU inflates every number.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from facekeypoints import models
from facekeypoints.export import onnx_bytes


def latency_ms(model: torch.nn.Module, repeats: int = 5, runs: int = 500) -> float:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes(model), opts, providers=["CPUExecutionProvider"])
    s = model.input_size
    x = (np.random.default_rng(0).random((1, 3, s, s)) * 255).astype(np.float32)
    for _ in range(200):
        sess.run(None, {"image": x})
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(runs):
            sess.run(None, {"image": x})
        best = min(best, (time.perf_counter() - t) / runs)
    return best * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="*", default=None, help="architectures (default: every registered one)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="folder for arch_latency.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.arch or models.available():
        torch.manual_seed(0)
        model = models.create(name).eval()
        ms = latency_ms(model, args.repeats)
        n, s = models.count_parameters(model), model.input_size
        rows.append({"arch": name, "parameters": n, "input_size": s, "ms": ms})
        print(f"{name:10s} {n / 1e3:8.0f} k params  {s:4d} px  {ms:7.3f} ms", flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "arch_latency.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
