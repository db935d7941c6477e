"""Export: torch and ONNX Runtime agree, metadata is complete, tampered weights are refused."""

import json

import numpy as np
import pytest
import torch

from facekeypoints import models
from facekeypoints.errors import ModelError
from facekeypoints.export import export_checkpoint, load_bundled_state
from facekeypoints.runtime import KeypointModel
from facekeypoints.training.checkpoint import load_checkpoint
from facekeypoints.training.config import TrainConfig
from facekeypoints.training.loop import train
from synthetic import write_udacity

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    data = write_udacity(root / "data", n_train=24, n_test=2)
    run = train(
        TrainConfig(
            data=str(data), out=str(root / "runs"), epochs=1, batch_size=8, progress=False, threads=1, val_fraction=0.2
        )
    )
    return export_checkpoint(run / "best.pt", root / "model" / "tiny.onnx", metrics={"nme_mean": 1.0}), run


def test_export_writes_model_metadata_and_weights(exported):
    onnx_path, _ = exported
    meta = json.loads(onnx_path.with_suffix(".json").read_text())
    for key in ("input_size", "crop_rule", "normalisation", "metrics", "training_command", "sha256", "arch"):
        assert key in meta, key
    assert meta["input_size"] == models.create(meta["arch"]).input_size and meta["crop_rule"]["scale"] == 1.25
    assert onnx_path.with_suffix(".npz").is_file()


def test_torch_and_onnx_outputs_agree(exported):
    onnx_path, run = exported
    ckpt = load_checkpoint(run / "best.pt")
    model = models.create(ckpt["arch"])
    model.load_state_dict(ckpt["ema"])
    wrapper = models.InferenceModel(model).eval()
    s = model.input_size
    crops = (np.random.default_rng(1).random((3, s, s, 3)) * 255).astype(np.uint8)
    got = KeypointModel(onnx_path).predict(crops)
    with torch.no_grad():
        want = wrapper(torch.from_numpy(crops).permute(0, 3, 1, 2).float()).numpy()
    assert got.shape == (3, 68, 2)
    assert np.abs(got - want).max() < 1e-2


def test_tampered_weights_are_refused(exported, tmp_path):
    onnx_path, _ = exported
    bad = tmp_path / "bad.onnx"
    data = bytearray(onnx_path.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    bad.with_suffix(".json").write_text(onnx_path.with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="sha256"):
        KeypointModel(bad)


def test_missing_metadata_and_missing_model(tmp_path, exported):
    onnx_path, _ = exported
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(onnx_path.read_bytes())
    with pytest.raises(ModelError, match="metadata"):
        KeypointModel(lone)
    with pytest.raises(ModelError, match="not found"):
        KeypointModel(tmp_path / "none.onnx")


@pytest.mark.parametrize("which", ["exported", "bundled"])
def test_exported_torch_weights_load_back(exported, which):
    """The .npz beside an .onnx (what `train --init` starts from) is the network the .onnx runs.

    Loaded into torch, it gives the ONNX model's landmarks (and scores) on a face crop and on
    noise crops: for the model exported here, and for the bundled one on a real face.
    """
    import cv2
    from matplotlib import cbook

    from facekeypoints.image_io import load_image
    from facekeypoints.runtime import DEFAULT_MODEL

    onnx_path = exported[0] if which == "exported" else DEFAULT_MODEL
    state, arch = load_bundled_state(onnx_path)
    model = models.create(arch)
    model.load_state_dict(state)  # strict: every tensor present, with its shape
    runtime = KeypointModel(onnx_path)
    s = runtime.input_size
    grace = load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    face = cv2.resize(grace[90:350, 130:390], (s, s), interpolation=cv2.INTER_AREA)  # the face, a little wide
    noise = (np.random.default_rng(2).random((2, s, s, 3)) * 255).astype(np.uint8)
    crops = np.concatenate([face[None], noise])
    want, want_scores = runtime.predict_scored(crops)
    wrapper = models.InferenceModel(model.eval(), scores=want_scores is not None).eval()
    with torch.no_grad():
        got = wrapper(torch.from_numpy(crops).permute(0, 3, 1, 2).float())
    got, got_scores = (got[0].numpy(), got[1].numpy()) if want_scores is not None else (got.numpy(), None)
    assert got.shape == want.shape == (3, 68, 2)
    assert np.abs(got - want).max() < 1e-3, np.abs(got - want).max()  # crop pixels (measured: 3e-5)
    if want_scores is not None:
        assert np.abs(got_scores - want_scores).max() < 1e-4  # measured: 2e-6


def test_runtime_rejects_wrong_crop_shape(exported):
    size = json.loads(exported[0].with_suffix(".json").read_text())["input_size"]
    with pytest.raises(ModelError, match=str(size)):
        KeypointModel(exported[0]).predict(np.zeros((1, 64, 64, 3), np.uint8))


@pytest.mark.parametrize("arch", [a for a in models.available() if a.startswith("pip")])
def test_every_pip_variant_exports_to_matching_onnx(arch, tmp_path):
    """export_checkpoint's own check compares torch and ONNX Runtime (window decodes included)."""
    from facekeypoints.geometry import CropRule
    from facekeypoints.training.checkpoint import save_atomic

    torch.manual_seed(1)
    model = models.create(arch).eval()
    with torch.no_grad():  # spread the scores so the argmax is not a tie
        model.head_out.bias.normal_(0, 3.0)
    ckpt = {"arch": arch, "model": model.state_dict(), "crop_rule": CropRule().to_dict(), "config": {}}
    save_atomic(ckpt, tmp_path / "c.pt")
    onnx_path = export_checkpoint(tmp_path / "c.pt", tmp_path / f"{arch}.onnx", use_ema=False, data_info={})
    assert KeypointModel(onnx_path).metadata["arch"] == arch


def test_metadata_names_the_training_faces_the_run_used(shared_data):
    """The Udacity zip is recognised by its sha256; the name says whether validation people were held out."""
    from facekeypoints.export import _describe_data

    zip_path = str(shared_data / "train-test-data.zip")
    all_faces, held_out = _describe_data(zip_path, 0.0), _describe_data(zip_path, 0.1)
    assert all_faces["sha256"] == held_out["sha256"]
    assert "all of the training split" in all_faces["name"]
    assert "minus the validation people" in held_out["name"]


def test_metadata_carries_the_mirror_offset_measured_on_the_training_faces(exported):
    onnx_path, _ = exported
    table = json.loads(onnx_path.with_suffix(".json").read_text())["mirror_offset"]
    assert len(table) == 68 and all(len(p) == 2 for p in table)
    rt = KeypointModel(onnx_path)
    assert rt.mirror_offset.shape == (68, 2) and np.allclose(rt.mirror_offset, np.asarray(table))


def test_without_its_training_faces_the_mirror_offset_is_null_and_flip_is_off(exported, tmp_path, capsys):
    import facekeypoints as fk

    _, run = exported
    out = export_checkpoint(run / "best.pt", tmp_path / "m.onnx", calibration_data=str(tmp_path / "gone"))
    assert "no mirror offset measured" in capsys.readouterr().err
    rt = KeypointModel(out)
    assert json.loads(out.with_suffix(".json").read_text())["mirror_offset"] is None and rt.mirror_offset is None
    det = fk.FaceKeypointDetector(model=rt, flip=True)
    assert det.flip is False and det.model_info()["flip"] is False


def test_mirror_offset_is_what_the_mirrored_crop_misses():
    """A model that answers the same points for every crop: its mirrored answer, mapped back, is the
    mirror image of those points, so the offset is the points minus their mirror image."""
    from facekeypoints.data.udacity import Sample
    from facekeypoints.geometry import CropRule
    from facekeypoints.landmarks import flip_keypoints
    from facekeypoints.training.mirror import mirror_offset
    from synthetic import random_face

    points = np.random.default_rng(0).uniform(10, 80, (68, 2)).astype(np.float32)

    class Constant(torch.nn.Module):
        input_size = 96

        def forward(self, x):
            return x.mean() * 0 + torch.from_numpy(points).expand(len(x), 68, 2)

        def decode(self, raw):
            return raw

    samples = [Sample(f"f{i}", *random_face(i)) for i in range(3)]
    got = mirror_offset(Constant().eval(), samples, CropRule(scale=1.25))
    assert np.allclose(got, points - flip_keypoints(points, 96), atol=1e-4)


# --- the `export` verb itself --------------------------------------------------------------------


def _one_line_error(err: str, *names: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("facekeypoints: error: "), err
    assert "Traceback" not in err and all(n in lines[0] for n in names), err


def test_cli_export_replaces_a_model_only_with_force(exported, tmp_path, capsys):
    from facekeypoints import cli

    _, run = exported
    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(run), "--out", str(out), "--name", "first"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    before = {p: p.read_bytes() for p in (out, out.with_suffix(".json"), out.with_suffix(".npz"))}

    assert cli.main(["export", str(run), "--out", str(out), "--name", "second"]) != 0
    _one_line_error(capsys.readouterr().err, str(out), "--force")
    assert {p: p.read_bytes() for p in before} == before  # nothing touched

    assert cli.main(["export", str(run), "--out", str(out), "--name", "second", "--force"]) == 0
    capsys.readouterr()
    assert KeypointModel(out).metadata["name"] == "second"  # replaced, and its sha256 matches the new file


def test_cli_export_of_a_run_folder_uses_its_best_checkpoint(exported, tmp_path, capsys):
    """A run folder holds best.pt and last.pt; exporting the folder exports best.pt's (moving-average) weights."""
    from facekeypoints import cli
    from facekeypoints.training.checkpoint import save_atomic

    _, run = exported
    folder = tmp_path / "run"
    folder.mkdir()
    best = load_checkpoint(run / "best.pt")
    save_atomic(best, folder / "best.pt")
    last = load_checkpoint(run / "best.pt")
    last["ema"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in last["ema"].items()}
    last["epoch"] = best["epoch"] + 1
    save_atomic(last, folder / "last.pt")

    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(folder), "--out", str(out)]) == 0
    capsys.readouterr()
    state = load_bundled_state(out)[0]
    differ = [k for k, v in best["ema"].items() if v.is_floating_point() and not np.array_equal(state[k], v.numpy())]
    assert not differ, f"exported weights are not best.pt's: {differ[:3]}"
    assert KeypointModel(out).metadata["epochs_trained"] == best["epoch"]


def test_cli_export_metrics_embeds_an_evaluation_report(exported, tmp_path, capsys):
    """``--metrics``: "evaluation report.json to embed as the model's metrics"; the real evaluate writes it."""
    from facekeypoints import cli

    onnx_path, run = exported
    data = json.loads((run / "config.json").read_text())["data"]
    data = data[0] if isinstance(data, list) else data
    args = ["evaluate", "--data", data, "--model", str(onnx_path), "--out", str(tmp_path / "ev"), "--no-progress"]
    assert cli.main(args) == 0
    report_path = tmp_path / "ev" / "report.json"
    report = json.loads(report_path.read_text())
    assert report["n_faces"] > 0 and "nme_mean" in report

    out = tmp_path / "m.onnx"
    assert cli.main(["export", str(run), "--out", str(out), "--metrics", str(report_path)]) == 0
    assert KeypointModel(out).metadata["metrics"] == report

    # an unreadable report is a one-line error naming it, and no model is written
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    fresh = tmp_path / "fresh.onnx"
    capsys.readouterr()
    assert cli.main(["export", str(run), "--out", str(fresh), "--metrics", str(broken)]) != 0
    _one_line_error(capsys.readouterr().err, "broken.json")
    assert not fresh.exists()
