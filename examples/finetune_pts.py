"""Fine-tune the bundled model on your own faces: a folder of images with 300-W ``.pts`` files.

    pip install "facekeypoints[train]"
    python examples/finetune_pts.py my_faces/ [--epochs 30] [--lr 5e-4] [--out runs/finetune]

``my_faces/`` holds ``face_001.jpg`` beside ``face_001.pts`` (68 points, 300-W's format, searched
recursively). The run starts from the bundled weights, holds out 10 % of the photos to pick the
best epoch, exports that epoch to ``OUT/finetuned.onnx`` (+ ``.json`` metadata, + ``.npz``
weights) and compares it with the bundled model on the folder's faces. Use the result anywhere
the bundled model goes: ``FaceKeypointDetector(model="OUT/finetuned.onnx")`` or ``--model``.
The command-line equivalent: ``facekeypoints train --data my_faces --init bundled ...``, then
``facekeypoints export`` and ``facekeypoints evaluate``.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("folder", help="images with a .pts file beside each")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (lower than from scratch)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of photos held out")
    parser.add_argument("--out", default="runs/finetune", help="runs go to OUT/1, OUT/2, ...")
    args = parser.parse_args(argv)

    try:
        from facekeypoints.export import export_checkpoint
        from facekeypoints.training.config import TrainConfig
        from facekeypoints.training.loop import train
    except ModuleNotFoundError as exc:
        sys.exit(f"fine-tuning needs {exc.name}: pip install 'facekeypoints[train]'")
    import facekeypoints as fk
    from facekeypoints.commands.evaluate import evaluate_dataset
    from facekeypoints.data.pts import PtsDataset

    config = TrainConfig(
        data=[args.folder],
        init="bundled",  # start from the shipped weights
        epochs=args.epochs,
        lr=args.lr,
        warmup_epochs=min(2.0, args.epochs / 4),
        batch_size=args.batch_size,
        val_fraction=args.val_fraction,
        out=args.out,
    )
    run = train(config)  # OUT/N with best.pt, last.pt, config.json, history.json
    model = export_checkpoint(run / "best.pt", run / "finetuned.onnx", name="finetuned", calibration_data=args.folder)

    faces = PtsDataset(args.folder).load()
    print(f"{len(faces)} faces in {args.folder}, from their true boxes (training faces included):")
    for label, path in (("bundled model", None), ("fine-tuned", model)):
        detector = fk.FaceKeypointDetector(model=path)
        report, _ = evaluate_dataset(detector, faces, "gt")
        print(f"  {label:14s} NME_io {report['nme_mean']:.2f} %")
    print(f"model: {model} (use it with FaceKeypointDetector(model=...) or --model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
