import pytest
import torch

from facekeypoints import models
from facekeypoints.errors import ModelError


@pytest.mark.parametrize("name", models.available())
def test_every_registered_model_runs_forward(name):
    torch.manual_seed(0)
    model = models.create(name).eval()
    s = model.input_size
    with torch.no_grad():
        out = models.InferenceModel(model)(torch.rand(2, 3, s, s) * 255)
    assert out.shape == (2, 68, 2)
    assert torch.isfinite(out).all()


def test_seed_baseline_is_the_udacity_shape():
    model = models.create("seed")
    assert model.input_size == 224
    assert 9.0e6 < models.count_parameters(model) < 9.8e6


def test_pip_decode_reads_the_best_cell_and_its_offset():
    model = models.create("pip-s")
    s, stride = model.input_size, model.stride
    h = w = s // stride
    raw = torch.zeros(1, 204, h, w)
    raw[0, 5, 3, 7] = 10.0  # landmark 5 lives in row 3, column 7
    raw[0, 68 + 5, 3, 7] = 0.25  # x offset (cells)
    raw[0, 136 + 5, 3, 7] = 0.75  # y offset
    kp = model.decode(raw)[0, 5]
    assert kp[0].item() == pytest.approx((7 + 0.25) * stride - 0.5)
    assert kp[1].item() == pytest.approx((3 + 0.75) * stride - 0.5)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(ModelError, match="pip-s"):
        models.create("nope")
