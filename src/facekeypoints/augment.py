"""Augmentation on (image, keypoints): one affine warp per sample plus photometric changes.

The warp combines the crop rule (face box -> model input), a random rotation,
scale and shift, and a horizontal flip that re-indexes points with
:data:`facekeypoints.landmarks.FLIP_PERMUTATION`. Keypoints are pixels, x then y.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .geometry import CropRule, apply_affine, crop_matrix, frame_rotation, rotated_keypoint_box, warp
from .landmarks import FLIP_PERMUTATION


@dataclass
class AugmentConfig:
    """Ranges of the random transforms (all uniform unless said otherwise)."""

    rotate_deg: float = 25.0  #: max |rotation| in degrees
    scale: float = 0.12  #: crop side multiplied by exp(U(-scale, scale))
    shift: float = 0.07  #: max centre shift as a fraction of the crop side
    #: the face stretched in the crop's frame: width by exp(u), height by exp(-u), u ~ U(-stretch, stretch)
    #: (faces wider or narrower than the training faces, the area kept)
    stretch: float = 0.0
    jitter_prob: float = 1.0  #: share of samples jittered by scale/shift (the rest by fine_scale/fine_shift)
    fine_scale: float = 0.01
    fine_shift: float = 0.005
    flip_prob: float = 0.5
    brightness: float = 0.25  #: added, fraction of 255
    contrast: float = 0.35  #: multiplied by 1 + U(-c, c)
    saturation: float = 0.5  #: colour blended towards gray by U(-s, s)
    gray_prob: float = 0.1
    blur_prob: float = 0.15
    noise_prob: float = 0.2
    noise_std: float = 6.0  #: gaussian noise, grey levels
    occlusion_prob: float = 0.0  #: random rectangle over 15-40 % of the crop's width and height
    #: share of those rectangles that are a patch of the same crop from elsewhere, mirrored (skin, hair,
    #: clothes, background: textured like real occluders); the rest are one flat grey
    occlusion_texture: float = 0.0
    downscale_prob: float = 0.15  #: shrink the crop to 35-80 % of its side and back (a small or soft photo)
    jpeg_prob: float = 0.15  #: re-encode as JPEG of quality 20-70 (compression blocks and ringing)

    def with_photometric_strength(self, strength: float) -> AugmentConfig:
        """A copy whose colour, blur and noise ranges and probabilities (what :func:`photometric`
        draws, occlusion aside) are scaled by ``strength`` (0: crops keep their pixels)."""
        return replace(
            self,
            brightness=self.brightness * strength,
            contrast=self.contrast * strength,
            saturation=self.saturation * strength,
            gray_prob=self.gray_prob * strength,
            blur_prob=self.blur_prob * strength,
            noise_prob=self.noise_prob * strength,
            downscale_prob=self.downscale_prob * strength,
            jpeg_prob=self.jpeg_prob * strength,
        )


def random_crop_matrix(
    keypoints: np.ndarray, rule: CropRule, size: int, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """A random crop matrix under ``rule``, and whether to flip it.

    The crop is rotated by a random angle and its box is the tight box of the points
    *measured in the rotated frame*, so the crop rule holds at every angle (as in the
    pipeline's levelled second pass). With probability ``cfg.jitter_prob`` the crop's
    scale and centre are then jittered by up to ``cfg.scale`` / ``cfg.shift`` (what a
    face detector's box looks like); otherwise by at most ``cfg.fine_scale`` /
    ``cfg.fine_shift`` (a box that is nearly the rule's own).
    """
    angle = np.deg2rad(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg))
    center, side = rotated_keypoint_box(keypoints, angle, rule)
    if rng.random() < cfg.jitter_prob:
        sj, sh = cfg.scale, cfg.shift
    else:
        sj, sh = cfg.fine_scale, cfg.fine_shift
    crop_side = side * rule.scale * float(np.exp(rng.uniform(-sj, sj)))
    center = center + frame_rotation(angle).T @ (rng.uniform(-sh, sh, 2) * crop_side)  # shift in the crop's frame
    m = crop_matrix((center[0], center[1]), crop_side, size, angle)
    if cfg.stretch > 0:
        u = float(rng.uniform(-cfg.stretch, cfg.stretch))
        sx, sy, half = float(np.exp(u)), float(np.exp(-u)), (size - 1) / 2.0
        s = np.array([[sx, 0.0, (1.0 - sx) * half], [0.0, sy, (1.0 - sy) * half], [0.0, 0.0, 1.0]])
        m = (s @ np.vstack([m, [0, 0, 1]]))[:2]  # about the crop's centre, in its (rotated) frame
    flip = bool(rng.random() < cfg.flip_prob)
    if flip:
        f = np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = (f @ np.vstack([m, [0, 0, 1]]))[:2]
    return m, flip


def warp_sample(image: np.ndarray, keypoints: np.ndarray, matrix: np.ndarray, size: int, flip: bool):
    """Apply ``matrix`` to the image and its points; re-index points when ``flip``."""
    crop = warp(image, matrix, size)
    kps = apply_affine(keypoints, matrix)
    if flip:
        kps = kps[FLIP_PERMUTATION]
    return crop, kps


def photometric(crop: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast, saturation, gray, blur, down-scaling, noise, JPEG and occlusion
    on an RGB uint8 crop."""
    img = crop.astype(np.float32)
    if rng.random() < cfg.gray_prob:
        g = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        img = np.repeat(g[..., None], 3, axis=2)
    elif cfg.saturation > 0:
        g = (img @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        s = 1.0 + rng.uniform(-cfg.saturation, cfg.saturation)
        img = g + (img - g) * s
    c = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
    mean = img.mean()
    img = (img - mean) * c + mean + rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
    if rng.random() < cfg.blur_prob:
        k = int(rng.choice([3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    if rng.random() < cfg.downscale_prob:
        h, w = img.shape[:2]
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(img, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.noise_prob:
        img = img + rng.normal(0.0, cfg.noise_std, img.shape).astype(np.float32)
    if rng.random() < cfg.jpeg_prob:
        q = int(rng.integers(20, 71))
        ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32)
    if cfg.occlusion_prob > 0 and rng.random() < cfg.occlusion_prob:
        h, w = img.shape[:2]
        rw, rh = int(rng.uniform(0.15, 0.4) * w), int(rng.uniform(0.15, 0.4) * h)
        x, y = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
        if cfg.occlusion_texture > 0 and rng.random() < cfg.occlusion_texture:
            sx, sy = int(rng.integers(0, w - rw)), int(rng.integers(0, h - rh))
            img[y : y + rh, x : x + rw] = img[sy : sy + rh, sx : sx + rw][:, ::-1].copy()
        else:
            img[y : y + rh, x : x + rw] = rng.uniform(0, 255)
    return np.clip(img, 0, 255).astype(np.uint8)


def augment(
    image: np.ndarray,
    keypoints: np.ndarray,
    rule: CropRule,
    size: int,
    cfg: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: (size x size x 3 RGB uint8 crop, (68, 2) float32 crop pixels)."""
    m, flip = random_crop_matrix(keypoints, rule, size, cfg, rng)
    crop, kps = warp_sample(image, keypoints, m, size, flip)
    return photometric(crop, cfg, rng), kps
