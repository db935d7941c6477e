"""How sure the landmark model is: landmark scores -> one calibrated ``quality`` per face.

The PIP head scores, for every landmark, how much of its cell probability lies in the 3x3
cells around its answer (:meth:`facekeypoints.models.compact.PIPNet.decode_with_scores`):
``landmark_scores`` (68,) in [0, 1]. A face's raw score is their mean (:func:`raw_score`).

The raw scores of good fits crowd just under 1 (the head is sure of its cell), so ``quality``
works on the evidence ``z = -ln(1 - raw)`` (:func:`evidence`: 0.9 -> 2.3, 0.999 -> 6.9) and maps it
through a logistic curve fitted on held-out faces
(``bench/quality_calibration.py``), so that it reads as the probability that the fit is good
(NME_io under 5 %). The model's metadata holds the fit (``quality``: ``a``, ``b``) and the
threshold that best separates good fits from failures (``threshold``); a model without a fit
reports the raw score.

The pipeline also uses the raw score to choose between readings of a face: the rescue crops
of an unsure first pass and the second pass against the first (:mod:`facekeypoints.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmarks import interocular_distance

#: A first pass whose raw score is under this is read again from :data:`RESCUE_CROPS`.
RESCUE_BELOW = 0.99

#: (rotation in degrees, widening of the box) of the rescue crops.
RESCUE_CROPS = ((-30.0, 1.0), (30.0, 1.0), (0.0, 1.35), (-55.0, 1.15), (55.0, 1.15))

#: Whether the rescue crops are also cut around the centre of the unsure first pass's points.
RESCUE_RECENTRE = True

#: The second pass is kept unless its evidence (:func:`evidence` of its raw score) is under the first's
#: by more than this: unless the second reading leaves ``exp(0.5)`` = 1.65 times as much doubt. With
#: model v8 the two raw scores of a clear face are both about 0.9998, and a bare comparison (margin 0)
#: flipped between the readings on the fourth decimal: the same face twice in one photo got points
#: 1.14 px apart. On the faces held out by v8's training run (bench/results/architecture_sweep.md):
#: margin 0: 300-W 3.885 %, Udacity 4.259 %; 0.5: 3.850 % and 4.288 %; 1 or more (always the second
#: pass): 3.842 % and 4.299 %.
REFINE_MARGIN = 0.5

#: Share of the first reading in a kept second pass, where the two agree (:func:`mix_first_pass`).
#: The first pass is read anyway and its errors are only partly the second's, so a share of it costs no
#: model run and averages some of them out. Chosen with model v9 on the faces its training run held out
#: (``python bench/pass_policy.py --run runs/v9/1``: YuNet boxes, both passes and the mirrored read,
#: REFINE_MARGIN applied): w = 0: 300-W 3.750 %, Udacity 4.273 %; 0.1: 3.740 / 4.224 %; 0.2: 3.736 /
#: 4.183 %; **0.25: 3.736 / 4.166 %**; 0.3: 3.738 / 4.152 %; 0.5: 3.760 / 4.118 %. Real photos are best
#: at 0.2-0.25; the Udacity faces gain up to 0.5.
FIRST_PASS_WEIGHT = 0.25

#: The first reading is mixed in only where the two readings' mean point distance is under this share
#: of the second's outer-eye-corner distance. A first pass that the second corrected must not pull the
#: answer back: mixed unconditionally, held-out faces read from deliberately disturbed boxes failed (over
#: 10 %) 1,156 times instead of 1,071. With the gate at 0.05: 1,072, while the YuNet-box faces keep the
#: gain (300-W 3.736 %, Udacity 4.172 %); on those, 99 % of faces agree to within 0.035 (300-W) and
#: 0.046 (Udacity).
FIRST_PASS_AGREEMENT = 0.05

#: A face whose answer has its eye line more than this many degrees from level gets a third pass (a
#: second levelled one, from that answer). The first crop is cut upright from the box, so on a tilted
#: head the first reading is poorer and the second crop, cut from it, is placed worse than on an upright
#: one. On the faces v9's training run held out, turned in the picture (``bench/rolled_faces.py``,
#: ``rolled_faces.json``; 300-W / Udacity): upright, 5.6 / 4.2 % of faces get it, 3.742 -> 3.737 % and
#: 4.229 -> 4.235 %; turned 15 degrees, half of them, 3.881 -> 3.817 % and 4.356 -> 4.334 %; turned 30
#: degrees, nearly all, 4.008 -> 3.791 % and 4.658 -> 4.535 %; 45 degrees 4.958 -> 4.590 %, over 10 % 7 -> 6.
LEVEL_AGAIN_DEG = 15.0

#: A detection that the face detector scored under :data:`CONFIRM_SCORE` (of 1) is reported only
#: when its landmark fit reaches this quality. Set with model v7 on the Udacity TRAINING faces (of
#: 1,656 that Haar found, one had a fit this poor and a detector score that low). With v8, on the
#: same 3,462 training photos, Haar made 495 such unsure detections of true faces and 75 of anything
#: else: 0.005 drops 8 of the first and 60 of the others (0.01: 10 and 62).
REJECT_QUALITY = 0.005
CONFIRM_SCORE = 0.5

#: Candidates the face detector scores from this up to its own threshold (YuNet: 0.5) are read too, and
#: reported only when their landmark fit reaches the model's quality threshold (a good fit): faces in
#: noisy, dark or strongly tilted photos that the detector is unsure of. On the 300-W faces v9's training
#: run held out, enlarged 2x and spoiled (``bench/hard_photos.py``, ``hard_photos.json``): turned 60
#: degrees, 134 -> 151 of 197 found; 75 degrees, 92 -> 122 (mean error 12.5 -> 9.4 %); strong noise 190 ->
#: 194; low contrast 194 -> 196; no change elsewhere. On the 300-W common and Udacity test photos, the
#: sample photos and 36 pictures without a face, the 45 such candidates read were none of them a face and
#: none fit as one (quality 0.056 at most), so none was reported.
UNSURE_SCORE = 0.3


#: Words that switch the reading of unsure candidates off (``--unsure-score off``,
#: ``FACEKEYPOINTS_SERVE_UNSURE_SCORE=off``); an empty value too.
UNSURE_OFF = ("off", "none", "no", "")


def parse_unsure_score(text: str) -> float | None:
    """An unsure-candidate score as typed (a flag's or a variable's value): a detector score in [0, 1],
    or one of :data:`UNSURE_OFF` (None: read only what the detector is sure of). ValueError otherwise."""
    if text.strip().lower() in UNSURE_OFF:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a score from 0 to 1 or 'off', got {text!r}")
    return value


#: A photo whose best face fit scores under this quality (or that gives no face at all) is searched
#: again turned a quarter turn either way and upside down (``FaceKeypointDetector(turns=True)``): a
#: face turned further than about 60 degrees is read as a wreck (quality near 0) or not found. On the
#: faces v9's training run held out: upright, 1 of 554 photos had its best fit under 0.05 (17 under the
#: model's threshold: good fits of hard faces, which a turned copy does not read better); of a third of
#: the 300-W ones turned 120 degrees, 52 of 66 gave no face or a best fit under 0.05 (37 under 0.01),
#: upside down 43 of 66 (12 under 0.01).
#: A turned reading at least this good, though under the threshold, also replaces an upright failed fit
#: it overlaps (it adds no face): on the held-out faces, the photo itself upside down, 4 faces over 10 %
#: became 1 (5.92 -> 4.21 %), no face came from a turned copy on 1,363 test, sample and faceless pictures.
TURN_BELOW = 0.05

#: A face whose answer's eye line is further than this from level (degrees) is read again in the copy of the
#: photo turned a quarter turn or upside down that shows it closest to upright, and the better fitting reading
#: kept (``FaceKeypointDetector(turns=True)``): a face the photo shows on its side is found by the face
#: detector and read sideways, with a fit good enough to stop the turned search, 1-2 points worse than upright.
ROLLED_DEG = 45.0

#: Quality under which a face is best treated as a failed fit, for a model without a fitted threshold.
DEFAULT_THRESHOLD = 0.5


def mix_first_pass(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``(N, 68, 2)`` readings of the same faces (pixels, x then y): ``second``, with a share
    :data:`FIRST_PASS_WEIGHT` of ``first`` where the two agree to within :data:`FIRST_PASS_AGREEMENT`
    (mean point distance over ``second``'s outer-eye-corner distance)."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    apart = np.linalg.norm(first - second, axis=-1).mean(axis=-1)
    agree = apart < FIRST_PASS_AGREEMENT * np.maximum(interocular_distance(second), 1e-6)
    w = np.where(agree, FIRST_PASS_WEIGHT, 0.0)[..., None, None]
    return (1.0 - w) * second + w * first


def raw_score(landmark_scores: np.ndarray) -> np.ndarray:
    """Mean of the (..., 68) landmark scores over the landmarks: (...,)."""
    return np.asarray(landmark_scores, np.float64).mean(axis=-1)


def evidence(raw: np.ndarray) -> np.ndarray:
    """``-ln(1 - raw)``: the raw score spread out near 1 (capped at ln(1e6) = 13.8)."""
    return -np.log(np.maximum(1.0 - np.asarray(raw, np.float64), 1e-6))


@dataclass(frozen=True)
class Calibration:
    """``quality = 1 / (1 + exp(-a * (evidence(raw) - b)))``; ``a = 0`` means no fit (quality = raw score)."""

    a: float = 0.0
    b: float = 0.0
    threshold: float = DEFAULT_THRESHOLD

    @classmethod
    def from_metadata(cls, metadata: dict) -> Calibration:
        q = metadata.get("quality") or {}
        try:
            return cls(float(q.get("a", 0.0)), float(q.get("b", 0.0)), float(q.get("threshold", DEFAULT_THRESHOLD)))
        except (TypeError, ValueError):
            return cls()

    def quality(self, landmark_scores: np.ndarray) -> float | np.ndarray:
        """Quality in [0, 1] of one face's (68,) scores (a float) or of (N, 68) scores ((N,) array)."""
        raw = raw_score(landmark_scores)
        q = np.clip(raw, 0.0, 1.0) if self.a == 0 else 1.0 / (1.0 + np.exp(-self.a * (evidence(raw) - self.b)))
        return float(q) if np.ndim(q) == 0 else q

    def to_dict(self) -> dict:
        return {"a": round(self.a, 4), "b": round(self.b, 4), "threshold": round(self.threshold, 4)}


def fit_logistic(x: np.ndarray, good: np.ndarray, iterations: int = 500) -> tuple[float, float]:
    """(a, b) of ``P(good) = sigmoid(a * (x - b))`` by Newton's method on the log-likelihood
    (a small ridge keeps it finite when the classes separate)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(good, np.float64)
    w = np.zeros(2)  # logit = w0 + w1 * x
    xs = np.stack([np.ones_like(x), x], axis=1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(xs @ w)))
        grad = xs.T @ (p - y) + 1e-3 * w
        hess = (xs * (p * (1 - p))[:, None]).T @ xs + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    a = float(w[1])
    b = float(-w[0] / w[1]) if w[1] != 0 else 0.0
    return a, b


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count half). NaN when either class is empty."""
    s = np.asarray(scores, np.float64)
    pos = np.asarray(positive, bool)
    p, n = s[pos], s[~pos]
    if len(p) == 0 or len(n) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([p, n]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([p, n])[order]
    # average ranks of ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    rp = ranks[: len(p)].sum()
    return float((rp - len(p) * (len(p) + 1) / 2.0) / (len(p) * len(n)))
