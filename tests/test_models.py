import math

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


def test_fused_blocks_are_dense_convs_and_keep_the_stage_shape():
    from facekeypoints.models.blocks import InvertedResidual, stage

    plain, fused = stage(16, 24, 3, 2, expand=3), stage(16, 24, 3, 2, expand=3, fused=1)
    assert all(isinstance(b, InvertedResidual) for b in plain)
    first = fused[0][0]
    assert isinstance(first, torch.nn.Conv2d) and first.groups == 1 and first.kernel_size == (3, 3)
    assert first.stride == (2, 2) and (first.in_channels, first.out_channels) == (16, 24)
    assert all(isinstance(b, InvertedResidual) for b in fused[1:])
    x = torch.rand(2, 16, 48, 48)
    assert plain(x).shape == fused(x).shape == (2, 24, 24, 24)


def test_patchify_stem_reaches_stride_4_in_one_conv():
    from facekeypoints.models.compact import PIPNet

    model = PIPNet(96, depths=(1, 2, 2), stem="patch").eval()
    conv = model.stem[1][0]
    assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (4, 4), (0, 0))
    with torch.no_grad():
        assert model.s4(model.stem(torch.rand(1, 3, 96, 96) * 255)).shape == (1, 24, 24, 24)
        assert model(torch.rand(1, 3, 96, 96)).shape == (1, 204, 12, 12)


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


def test_soft_window_decode_averages_the_cells_around_the_best_one():
    from facekeypoints.models.compact import PIPNet

    model = PIPNet(96, window=1)
    stride, h = model.stride, 96 // model.stride
    raw = torch.zeros(1, 204, h, h)
    raw[0, :68] = -50.0  # every cell unlikely...
    raw[0, 0, 4, 4] = 20.0  # ...but one: the soft decode is the hard one
    raw[0, 68, 4, 4], raw[0, 136, 4, 4] = 0.5, 0.5
    raw[0, 1, 2, 5] = raw[0, 1, 2, 6] = 20.0  # two equal neighbours: the midpoint of their positions
    raw[0, 68 + 1, 2, 5], raw[0, 68 + 1, 2, 6] = 0.2, 0.4
    raw[0, 2, 0, 0] = 20.0  # a corner cell: the window moves inside the grid and still holds it
    kp = model.decode(raw)[0]
    assert kp[0].tolist() == pytest.approx([4.5 * stride - 0.5, 4.5 * stride - 0.5], abs=1e-4)
    assert kp[1, 0].item() == pytest.approx(((5 + 0.2) + (6 + 0.4)) / 2 * stride - 0.5, abs=1e-4)
    assert kp[1, 1].item() == pytest.approx(2 * stride - 0.5, abs=1e-4)
    assert kp[2].tolist() == pytest.approx([-0.5, -0.5], abs=1e-4)
    raw[0, 3] = -50.0
    raw[0, 3, 11, 11], raw[0, 3, 10, 11] = 20.0, 20.0  # on the border: both cells are in the moved window
    raw[0, 136 + 3, 11, 11], raw[0, 136 + 3, 10, 11] = 0.25, 0.75
    # y: the mean of (11 + 0.25) and (10 + 0.75) cells
    assert model.decode(raw)[0, 3].tolist() == pytest.approx([11 * stride - 0.5, 11 * stride - 0.5], abs=1e-4)


def test_window_temperature_flattens_the_weights():
    """Scores divided by the temperature: T=2 on a 2-nat gap weighs the cells as T=1 on a 1-nat gap."""
    from facekeypoints.models.compact import PIPNet

    hot, flat = PIPNet(96, window=1), PIPNet(96, window=1, temperature=2.0)
    stride, h = hot.stride, 96 // hot.stride
    raw = torch.full((1, 204, h, h), -50.0)
    raw[0, 68:] = 0.0
    raw[0, 0, 4, 4], raw[0, 0, 4, 5] = 2.0, 0.0  # best cell, and its right-hand neighbour 2 nats lower
    x_hot, x_flat = hot.decode(raw)[0, 0, 0].item(), flat.decode(raw)[0, 0, 0].item()

    def share(gap: float) -> float:  # the neighbour's softmax weight
        return 1.0 / (1.0 + math.exp(gap))

    assert x_hot == pytest.approx((4 + share(2.0)) * stride - 0.5, abs=1e-4)
    assert x_flat == pytest.approx((4 + share(1.0)) * stride - 0.5, abs=1e-4)
    assert models.create("pip-s2").temperature == 2.0


def test_point_loss_reaches_scores_and_offsets():
    from facekeypoints.training.losses import pip_loss

    torch.manual_seed(0)
    model = models.create("pip-s2")
    h = model.input_size // model.stride
    raw = torch.randn(2, 204, h, h, requires_grad=True)
    target = torch.rand(2, 68, 2) * (model.input_size - 1)
    base, parts = pip_loss(model, raw, target, point_weight=0.0)
    loss, parts = pip_loss(model, raw, target, point_weight=5.0)
    assert "point_l1" in parts and loss.item() == pytest.approx(base.item() + 5.0 * parts["point_l1"], rel=1e-5)
    extra = loss - base  # the point term alone
    (grad,) = torch.autograd.grad(extra, raw)
    assert extra.item() > 0
    assert grad[:, :68].abs().sum() > 0 and grad[:, 68:].abs().sum() > 0


def test_soft_cell_targets_centre_on_the_true_point():
    from facekeypoints.training.losses import soft_cell_targets

    u = torch.tensor([[5.3, 2.5]])  # continuous cell coordinates on a 12 x 12 grid
    v = torch.tensor([[7.8, 2.5]])
    q = soft_cell_targets(u, v, 12, 12, sigma=0.8).reshape(2, 12, 12)
    assert torch.allclose(q.sum(dim=(1, 2)), torch.ones(2))
    # the most likely cell is the one holding the point: row floor(v), column floor(u)
    assert divmod(int(q[0].argmax()), 12) == (7, 5)
    # away from the border the target's mean sits on the point (cell centres are at index + 0.5)
    centres = torch.arange(12.0) + 0.5
    assert float((q[0].sum(0) * centres).sum()) == pytest.approx(5.3, abs=0.02)
    assert float((q[0].sum(1) * centres).sum()) == pytest.approx(7.8, abs=0.02)
    # a point on a cell centre: symmetric around it
    assert float(q[1, 2, 1]) == pytest.approx(float(q[1, 2, 3]), abs=1e-6)


def _random_pip_batch():
    """A pip-s2 model, a random raw output for 2 crops and random targets (crop pixels), seeded."""
    torch.manual_seed(0)
    model = models.create("pip-s2")
    h = model.input_size // model.stride
    return model, torch.randn(2, 204, h, h), torch.rand(2, 68, 2) * (model.input_size - 1)


def test_label_sigma_and_neighbour_weight_change_the_pip_loss():
    from facekeypoints.training.losses import pip_loss

    model, raw, target = _random_pip_batch()
    hot, hot_parts = pip_loss(model, raw, target)
    # a very narrow Gaussian is the one-hot label
    narrow, narrow_parts = pip_loss(model, raw, target, label_sigma=0.05)
    assert narrow_parts["ce"] == pytest.approx(hot_parts["ce"], rel=1e-4)
    wide, wide_parts = pip_loss(model, raw, target, label_sigma=1.0)
    assert wide_parts["ce"] != pytest.approx(hot_parts["ce"], rel=1e-3)
    assert wide_parts["offset_l1"] == pytest.approx(hot_parts["offset_l1"])
    _, centre_only = pip_loss(model, raw, target, neighbour_weight=0.0)
    _, even = pip_loss(model, raw, target, neighbour_weight=1.0)
    assert centre_only["offset_l1"] != pytest.approx(even["offset_l1"], rel=1e-3)


def test_jaw_weight_weighs_the_jaw_points_terms():
    """With jaw_weight w the 17 jaw points' terms count w times the others' (68 weights of mean 1)."""
    import torch.nn.functional as F

    from facekeypoints.landmarks import JAW
    from facekeypoints.training.losses import pip_loss

    model, raw, target = _random_pip_batch()
    h = raw.shape[-1]
    cell = ((target + 0.5) / model.stride).floor().clamp(0, h - 1).long()
    ce = F.cross_entropy(
        raw[:, :68].reshape(-1, h * h), (cell[..., 1] * h + cell[..., 0]).reshape(-1), reduction="none"
    )
    ce = ce.reshape(2, 68)
    weights = torch.ones(68)
    weights[list(JAW)] = 3.0
    weights = weights / weights.mean()
    _, plain = pip_loss(model, raw, target)
    _, same = pip_loss(model, raw, target, jaw_weight=1.0)
    _, jawed = pip_loss(model, raw, target, jaw_weight=3.0)
    assert plain["ce"] == pytest.approx(float(ce.mean()), rel=1e-5) and same == plain
    assert jawed["ce"] == pytest.approx(float((ce * weights).mean()), rel=1e-5)
    assert jawed["offset_l1"] != pytest.approx(plain["offset_l1"], rel=1e-4)


def test_pip_loss_sample_weights_zero_leave_those_points_untrained():
    from facekeypoints.landmarks import JAW
    from facekeypoints.training.losses import pip_loss

    model, raw, target = _random_pip_batch()
    s = model.stride
    target = target.clamp(1.5 * s, model.input_size - 1.5 * s)  # every point's 8 neighbour cells on the grid
    sw = torch.ones(2, 68)
    sw[1, list(JAW)] = 0.0  # the second crop's jaw labels are not learned
    _, plain = pip_loss(model, raw, target, sample_weights=torch.ones(2, 68))
    assert plain == pip_loss(model, raw, target)[1]
    raw = raw.detach().requires_grad_(True)
    loss, _ = pip_loss(model, raw, target, sample_weights=sw)
    loss.backward()
    grad = raw.grad.reshape(2, 3, 68, -1)  # scores, x offsets, y offsets of each point
    assert float(grad[1, :, list(JAW)].abs().max()) == 0.0
    assert float(grad[0, :, list(JAW)].abs().max()) > 0.0 and float(grad[1, :, 17:].abs().max()) > 0.0
    moved = target.clone()
    moved[1, list(JAW)] = model.input_size / 2.0  # where those labels are does not matter
    assert float(pip_loss(model, raw, moved, sample_weights=sw)[0]) == pytest.approx(float(loss), rel=1e-6)


def test_unknown_architecture_lists_valid_names():
    with pytest.raises(ModelError, match="pip-s"):
        models.create("nope")
