"""Head pose (yaw, pitch, roll) from the 68 landmarks: PnP against a generic 3-D face.

The camera is a pinhole with focal length equal to the image width (about a
53 degree horizontal field of view, typical of webcams and phones), principal
point at the image centre, no distortion.

Angles are degrees, in the camera's frame (x to the image's right, y down, z
away from the camera), and the rotation taking the face from frontal to its
pose is ``R = R_roll @ R_yaw @ R_pitch`` (pitch applied first):

- **yaw** > 0: the face turns towards the image's right (the subject looks to
  their own left); the nose tip moves right.
- **pitch** > 0: the face tilts up (chin up); the nose tip moves up.
- **roll** > 0: the face rotates clockwise on screen; the eye line
  (point 36 to point 45) then slopes down to the right, as in
  :func:`facekeypoints.geometry.eye_angle`.

A frontal face looking into the camera is (0, 0, 0). The 3-D face is generic,
so a particular face's proportions bias the angles by a few degrees (pitch most).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

#: The generic 3-D face: landmark index -> (x, y, z) in millimetres, x to the
#: subject's left (the image's right when frontal), y down, z into the head. The
#: origin is between the eyes. Jaw points other than the chin are left out: a
#: detector places them on the visible outline, which slides over the face as it turns.
MODEL_POINTS_MM: dict[int, tuple[float, float, float]] = {
    8: (0.0, 118.0, 0.0),  # chin (menton)
    17: (-56.0, -22.0, 22.0),  # right brow, outer end
    21: (-13.0, -30.0, 2.0),  # right brow, inner end
    22: (13.0, -30.0, 2.0),
    26: (56.0, -22.0, 22.0),
    27: (0.0, -4.0, -4.0),  # nose root, between the eyes
    30: (0.0, 42.0, -30.0),  # nose tip
    31: (-14.0, 50.0, -10.0),  # right nostril wing
    33: (0.0, 54.0, -16.0),  # base of the nose (subnasale)
    35: (14.0, 50.0, -10.0),
    36: (-46.0, 0.0, 14.0),  # right eye, outer corner
    39: (-15.0, 1.0, 4.0),  # right eye, inner corner
    42: (15.0, 1.0, 4.0),
    45: (46.0, 0.0, 14.0),  # left eye, outer corner
    48: (-26.0, 79.0, 6.0),  # right mouth corner
    51: (0.0, 70.0, -12.0),  # top of the upper lip
    54: (26.0, 79.0, 6.0),
    57: (0.0, 90.0, -8.0),  # bottom of the lower lip
}

#: Indices of :data:`MODEL_POINTS_MM` and their coordinates as arrays.
MODEL_INDICES: np.ndarray = np.array(sorted(MODEL_POINTS_MM), dtype=np.int64)
MODEL_POINTS: np.ndarray = np.array([MODEL_POINTS_MM[i] for i in MODEL_INDICES], dtype=np.float64)

#: Where pose axes start: the nose tip.
AXIS_ORIGIN = 30


class FaceLike(Protocol):
    keypoints: np.ndarray


@dataclass(frozen=True)
class HeadPose:
    """A solved pose: angles (degrees) plus OpenCV's ``rvec``/``tvec`` and camera matrix."""

    yaw: float
    pitch: float
    roll: float
    rvec: np.ndarray
    tvec: np.ndarray
    camera_matrix: np.ndarray

    @property
    def angles(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)


def camera_matrix(image_size: tuple[int, int]) -> np.ndarray:
    """3x3 intrinsics for an image of ``(width, height)`` pixels: focal length = width, centred."""
    w, h = (float(v) for v in image_size)
    f = max(w, 1.0)
    return np.array([[f, 0.0, (w - 1) / 2.0], [0.0, f, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """``R_roll @ R_yaw @ R_pitch`` for angles in degrees (the module's convention)."""
    y, p, r = np.radians([yaw, pitch, roll])
    r_pitch = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    r_yaw = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    r_roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return r_roll @ r_yaw @ r_pitch


def rotation_angles(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees of a rotation matrix; inverse of :func:`rotation_matrix`."""
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.degrees(np.arcsin(np.clip(r[2, 0], -1.0, 1.0)))
    pitch = np.degrees(np.arctan2(-r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def project_model(
    yaw: float,
    pitch: float,
    roll: float,
    image_size: tuple[int, int],
    translation: tuple[float, float, float] | None = None,
) -> np.ndarray:
    """Image points (68, 2) of the generic face posed at the given angles (NaN where it has no point).

    ``translation`` (mm, camera frame) defaults to straight ahead at a distance
    where the face spans about a third of the image width.
    """
    k = camera_matrix(image_size)
    if translation is None:
        translation = (0.0, 0.0, 3.0 * k[0, 0] * 100.0 / max(float(image_size[0]), 1.0))
    pts3 = MODEL_POINTS @ rotation_matrix(yaw, pitch, roll).T + np.asarray(translation, dtype=np.float64)
    proj = pts3 @ k.T
    out = np.full((68, 2), np.nan)
    out[MODEL_INDICES] = proj[:, :2] / proj[:, 2:3]
    return out


def solve_head_pose(
    keypoints: np.ndarray, image_size: tuple[int, int], guess: HeadPose | None = None
) -> HeadPose | None:
    """Full PnP solution for (68, 2) pixel ``keypoints`` in an image of ``(width, height)``.

    Without ``guess`` it solves from scratch (SQPnP, then Levenberg-Marquardt
    refinement); with the pose of the previous video frame as ``guess`` it only
    refines from there, which is several times faster. Returns None when the
    points are not finite or no solution in front of the camera is found.
    """
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    if len(kps) != 68:
        raise ValueError(f"expected 68 keypoints, got {len(kps)}")
    img_pts = kps[MODEL_INDICES]
    if not np.isfinite(img_pts).all():
        return None
    k = camera_matrix(image_size)
    dist = np.zeros(4)
    rvec = tvec = None
    try:
        if guess is not None and np.array_equal(guess.camera_matrix, k):
            rvec, tvec = guess.rvec.reshape(3, 1).copy(), guess.tvec.reshape(3, 1).copy()
            ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, img_pts, k, dist, rvec, tvec, True, cv2.SOLVEPNP_ITERATIVE)
            if not ok or not np.isfinite(tvec).all() or tvec[2, 0] <= 0:
                rvec = tvec = None
        if rvec is None:
            ok, rvec, tvec = cv2.solvePnP(MODEL_POINTS, img_pts, k, dist, flags=cv2.SOLVEPNP_SQPNP)
            if not ok:
                return None
            rvec, tvec = cv2.solvePnPRefineLM(MODEL_POINTS, img_pts, k, dist, rvec, tvec)
    except cv2.error:
        return None
    if not (np.isfinite(rvec).all() and np.isfinite(tvec).all()) or tvec[2, 0] <= 0:
        return None
    yaw, pitch, roll = rotation_angles(cv2.Rodrigues(rvec)[0])
    return HeadPose(yaw, pitch, roll, rvec.reshape(3), tvec.reshape(3), k)


def head_pose(keypoints: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float, float] | None:
    """(yaw, pitch, roll) in degrees for (68, 2) pixel ``keypoints``; ``image_size`` is (width, height).

    See the module docstring for the signs. None when it cannot be solved.
    """
    pose = solve_head_pose(keypoints, image_size)
    return None if pose is None else pose.angles


#: Axis colours (RGB): x (to the subject's left) red, y (up) green, z (out of the face) blue.
AXIS_COLORS = ((230, 40, 40), (40, 200, 40), (40, 90, 255))


def draw_pose_axes(
    rgb: np.ndarray, face: FaceLike, length_mm: float = 60.0, thickness: int | None = None
) -> np.ndarray:
    """A copy of RGB ``rgb`` with the face's head axes drawn from its nose tip.

    Red points to the subject's left, green up, blue out of the face. Faces whose
    pose cannot be solved are left undrawn.
    """
    img = np.ascontiguousarray(rgb).copy()
    h, w = img.shape[:2]
    pose = solve_head_pose(face.keypoints, (w, h))
    if pose is None:
        return img
    origin = np.array(MODEL_POINTS_MM[AXIS_ORIGIN])
    ends = origin + np.array([[0, 0, 0], [length_mm, 0, 0], [0, -length_mm, 0], [0, 0, -length_mm]], np.float64)
    pts, _ = cv2.projectPoints(ends, pose.rvec, pose.tvec, pose.camera_matrix, np.zeros(4))
    pts = pts.reshape(-1, 2)
    if not np.isfinite(pts).all() or np.abs(pts).max() > 1e6:
        return img
    if thickness is None:
        span = np.ptp(np.asarray(face.keypoints, dtype=np.float64).reshape(-1, 2), axis=0).max()
        thickness = max(1, round(float(span) / 80.0))
    shift = 4
    p0 = tuple(int(round(v * (1 << shift))) for v in pts[0])
    for end, color in zip(pts[1:], AXIS_COLORS):
        p1 = tuple(int(round(v * (1 << shift))) for v in end)
        cv2.line(img, p0, p1, color, thickness, lineType=cv2.LINE_AA, shift=shift)
    return img
