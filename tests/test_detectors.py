import numpy as np
import pytest
from matplotlib import cbook

from facekeypoints.detectors import (
    BoxCalibration,
    FaceDetector,
    HaarDetector,
    available_detectors,
    box_iou,
    create_detector,
    register,
)
from facekeypoints.detectors import base as detectors_base
from facekeypoints.errors import FaceKeypointsError, InputError
from facekeypoints.image_io import load_image


@pytest.fixture(scope="module")
def haar() -> HaarDetector:
    return create_detector("haar")


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def check_output(boxes, scores):
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    assert scores.dtype == np.float32 and scores.shape == (len(boxes),)
    assert (np.diff(scores) <= 0).all(), "sorted by decreasing score"


def test_registry_lists_haar():
    assert "haar" in available_detectors()
    det = create_detector("haar")
    assert isinstance(det, FaceDetector) and det.name == "haar"


def test_unknown_name_lists_valid_names():
    with pytest.raises(InputError) as info:
        create_detector("no-such-detector")
    msg = str(info.value)
    assert "no-such-detector" in msg and "haar" in msg
    assert isinstance(info.value, FaceKeypointsError) and "\n" not in msg


def test_register_custom_detector(monkeypatch):
    monkeypatch.setattr(detectors_base, "_REGISTRY", dict(detectors_base._REGISTRY))

    @register("fixed-box")
    class Fixed(FaceDetector):
        def __init__(self, side: float = 10.0):
            self.side = side

        def detect(self, rgb):
            return np.array([[0, 0, self.side, self.side]], np.float32), np.ones(1, np.float32)

    assert "fixed-box" in available_detectors()
    det = create_detector("fixed-box", side=5.0)
    assert det.name == "fixed-box"
    boxes, _scores = det(np.zeros((20, 20, 3), np.uint8))
    np.testing.assert_allclose(boxes, [[0, 0, 5, 5]])
    np.testing.assert_allclose(det.to_keypoint_box(boxes), boxes)  # default: identity
    with pytest.raises(ValueError):
        register("fixed-box")(type("Other", (Fixed,), {}))


def test_haar_finds_grace_hopper(haar, grace):
    boxes, scores = haar.detect(grace)
    check_output(boxes, scores)
    assert len(boxes) == 1
    x0, y0, x1, y1 = boxes[0]
    # Her face is in the upper middle of the 512x600 portrait.
    assert 100 < x0 < (x0 + x1) / 2 < 300 < x1 < 450 and 50 < y0 < (y0 + y1) / 2 < 300 < y1 < 400
    kp_box = haar.to_keypoint_box(boxes)
    assert kp_box.shape == (1, 4) and kp_box.dtype == np.float32
    assert kp_box[0, 1] > y0, "the keypoint box starts at the brows, below the Haar box top"


def test_haar_no_face_on_blank_and_noise(haar):
    boxes, scores = haar.detect(np.full((240, 320, 3), 128, np.uint8))
    check_output(boxes, scores)
    assert len(boxes) == 0
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    boxes, scores = haar.detect(noise)
    check_output(boxes, scores)
    assert len(boxes) == 0


def test_haar_huge_and_tiny_images(haar):
    boxes, scores = haar.detect(np.zeros((4000, 6000, 3), np.uint8))
    check_output(boxes, scores)
    assert len(boxes) == 0
    boxes, scores = haar.detect(np.zeros((5, 7, 3), np.uint8))
    check_output(boxes, scores)
    assert len(boxes) == 0


def test_haar_downscaled_boxes_map_back(grace):
    full = create_detector("haar").detect(grace)[0]
    half = create_detector("haar", max_side=300).detect(grace)[0]
    assert len(full) == len(half) == 1
    assert box_iou(full, half)[0, 0] > 0.8


def test_calibration_fit_recovers_map():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (50, 2))
    side = rng.uniform(40, 200, 50)
    det = np.c_[xy, xy + side[:, None]].astype(np.float32)
    truth = BoxCalibration(dx=0.01, dy=0.15, sx=0.9, sy=0.8)
    fitted = BoxCalibration.fit(det, truth.apply(det))
    np.testing.assert_allclose([fitted.dx, fitted.dy, fitted.sx, fitted.sy], [0.01, 0.15, 0.9, 0.8], atol=1e-4)


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(box_iou(a, b)[0], [1.0, 1 / 3, 0.0], atol=1e-6)
