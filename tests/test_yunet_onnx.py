"""YuNet on ONNX Runtime (detectors/yunet_onnx.py, onnx_writer.py): the same faces as the library."""

import numpy as np
import pytest
from matplotlib import cbook

from facekeypoints.detectors import create_detector, yunet, yunet_onnx
from facekeypoints.errors import ModelError
from facekeypoints.image_io import load_image
from facekeypoints.onnx_writer import Graph


@pytest.fixture(scope="module")
def grace() -> np.ndarray:
    return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def same_faces(img: np.ndarray, **options) -> int:
    """Detect with both backends, assert identical answers, return the number of faces."""
    a = create_detector("yunet", backend="onnxruntime", **options).detect(img)
    b = create_detector("yunet", backend="library", **options).detect(img)
    assert len(a[0]) == len(b[0])
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    return len(a[0])


def test_the_default_backend_is_onnxruntime_and_names_are_checked():
    assert create_detector("yunet").backend == "onnxruntime"
    assert create_detector("yunet", backend="library").backend == "library"
    with pytest.raises(ValueError, match="unknown YuNet backend"):
        create_detector("yunet", backend="gpu")


def test_onnx_writer_builds_a_graph_onnx_runtime_runs():
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    b = rng.normal(size=4).astype(np.float32)
    g = Graph(name="t")
    g.input("x", [1, 3, "h", "w"])
    y = g.node("Conv", ["x", g.constant("w", w), g.constant("b", b)], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = g.node("Relu", [y], ["r"])
    g.node("MaxPool", [y], ["y"], kernel_shape=[2, 2], strides=[2, 2])
    g.output("y", [1, 4, "h2", "w2"])
    model = g.model(opset=13)
    x = rng.normal(size=(1, 3, 6, 8)).astype(np.float32)
    got = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    # the same in numpy
    pad = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    conv = np.zeros((4, 6, 8), np.float32)
    for o in range(4):
        for ky in range(3):
            for kx in range(3):
                conv[o] += np.einsum("chw,c->hw", pad[:, ky : ky + 6, kx : kx + 8], w[o, :, ky, kx])
        conv[o] += b[o]
    want = np.maximum(conv, 0).reshape(4, 3, 2, 4, 2).max(axis=(2, 4))
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5)
    onnx = pytest.importorskip("onnx")
    onnx.checker.check_model(onnx.load_from_string(model))


def test_the_yunet_graph_is_valid_onnx():
    onnx = pytest.importorskip("onnx")
    layers = yunet_onnx.read_layers(yunet._library())
    assert layers is not None and len(layers) == yunet_onnx.LAYERS
    model = onnx.load_from_string(yunet_onnx.build_model(layers))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["rgb"]
    assert len(model.graph.output) == 12


def test_both_backends_answer_the_same_faces(grace):
    """Whole pictures, odd sizes (padded to multiples of 32), enlarged small ones, several faces,
    low-scoring candidates (min_score 0.2) and pictures with no face."""
    assert same_faces(grace) == 1
    assert same_faces(np.ascontiguousarray(grace[37:451, 11:333])) == 1
    assert same_faces(np.ascontiguousarray(grace[::5, ::5])) == 1  # 103 x 128: searched enlarged
    two = np.concatenate([grace, grace[:, ::-1]], axis=1)
    assert same_faces(np.ascontiguousarray(two)) == 2
    same_faces(two, min_score=0.2, min_face=20)
    rng = np.random.default_rng(1)
    same_faces((rng.random((240, 320, 3)) * 255).astype(np.uint8), min_score=0.2)
    assert same_faces(np.zeros((480, 640, 3), np.uint8)) == 0


def test_both_backends_answer_the_same_faces_on_real_photos(shared_data):
    faces = 0
    for name in ("obamas.jpg", "the_beatles.jpg", "mona_lisa.jpg"):
        faces += same_faces(load_image(shared_data / "samples" / name))
    assert faces >= 7
    photos = sorted((shared_data / "300w" / "common").rglob("*.jpg"))[::25]
    if not photos:
        pytest.skip("no 300-W common photos here")
    assert sum(same_faces(load_image(p), min_score=0.2) for p in photos) >= len(photos)


def test_answers_do_not_depend_on_threads_and_sessions_are_shared(grace):
    one = create_detector("yunet", threads=1)
    two = create_detector("yunet", threads=2)
    a, b = one.detect(grace), two.detect(grace)
    np.testing.assert_array_equal(a[0], b[0])
    backend = yunet._onnx_backend()
    assert backend.session(1) is backend.session(1)
    assert backend.session(1).get_session_options().intra_op_num_threads == 1
    assert backend.session(2).get_session_options().intra_op_num_threads == 2


def test_an_unknown_layer_table_falls_back_to_the_library(monkeypatch, grace):
    layers = yunet_onnx.read_layers(yunet._library())
    wrong = [dict(layer) for layer in layers]
    wrong[5] = {**wrong[5], "channels": 24}
    assert not yunet_onnx._shapes_fit(wrong)
    monkeypatch.setattr(yunet_onnx, "read_layers", lambda library: None)
    yunet._onnx_backend.cache_clear()
    try:
        det = create_detector("yunet")
        assert det.backend == "library" and len(det.detect(grace)[0]) == 1
        with pytest.raises(ModelError, match="backend='library'"):
            create_detector("yunet", backend="onnxruntime")
    finally:
        monkeypatch.undo()
        yunet._onnx_backend.cache_clear()
    assert create_detector("yunet").backend == "onnxruntime"


def test_greedy_suppression_keeps_what_the_library_keeps():
    """Each box, best first, is kept unless it overlaps a box kept before it by IoU over the threshold."""
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    wh = rng.uniform(5, 40, (300, 2)).astype(np.float32)
    box = np.concatenate([xy, xy + wh], axis=1)
    box[7] = box[3]  # identical boxes and touching edges too
    box[9] = [box[4, 2], box[4, 1], box[4, 2] + 10, box[4, 3]]

    def iou(a, b):
        iw, ih = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = float(iw * ih)
        return inter / (float((a[2] - a[0]) * (a[3] - a[1])) + float((b[2] - b[0]) * (b[3] - b[1])) - inter)

    want: list[int] = []
    for i in range(len(box)):
        if all(iou(box[i], box[k]) <= yunet_onnx.NMS_IOU for k in want):
            want.append(i)
    assert yunet_onnx._greedy_nms(box).tolist() == want
    assert 20 < len(want) < 300


def test_both_backends_answer_the_same_faces_in_a_crowd(grace):
    crowd = np.ascontiguousarray(np.tile(grace[::3, ::3], (3, 4, 1)))  # 12 faces about 60 px wide
    assert same_faces(crowd, min_face=20) == 12
