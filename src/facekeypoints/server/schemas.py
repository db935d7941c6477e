"""What the answers look like, for the OpenAPI description (the routes build plain dicts)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Version of the JSON document (shared with ``facekeypoints detect --json``).
SCHEMA = "facekeypoints/v1"


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. unsupported_media_type, image_too_large, timeout")
    detail: str = Field(description="one-line explanation for a person")


class FaceOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    box: list[float] = Field(description="x0, y0, x1, y1 in image pixels")
    score: float = Field(description="face detector confidence")
    keypoints: list[list[float]] = Field(description="68 [x, y] pairs in image pixels (iBUG order, 0-based)")
    pose: dict[str, float] | None = Field(None, description="yaw, pitch, roll in degrees, once head pose exists")
    quality: float | None = Field(
        None, description="how sure the landmark model is of this face, 0-1 (see the model card for the threshold)"
    )
    landmark_scores: list[float] | None = Field(None, description="68 per-landmark confidences, 0-1")


class ModelOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    input_size: int
    detector: str
    refine: bool
    flip: bool = True
    convention: str = "ibug"


class LandmarksOut(BaseModel):
    schema_: str = Field(SCHEMA, alias="schema")
    model: ModelOut
    width: int
    height: int
    faces: list[FaceOut]
    time_ms: dict[str, float] = Field(description="decode, landmarks (detection + keypoints) and total, in ms")


def error_responses(*statuses: int) -> dict:
    """The ``responses=`` entries of a route for these error statuses."""
    text = {
        400: "empty body, malformed multipart form, or a bad parameter",
        406: "the Accept header allows neither PNG nor JPEG",
        413: "upload over the size limit (payload_too_large) or image over the pixel limit (image_too_large)",
        415: "the body is not a PNG, JPEG, WebP or BMP image",
        422: "a PNG/JPEG/WebP/BMP whose header or data is corrupt or truncated",
        503: "decode + inference took longer than the time limit (timeout) or the server is saturated (busy)",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


_BINARY = {"schema": {"type": "string", "format": "binary"}}
#: ``openapi_extra`` of the routes that take an image.
IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "the image as a multipart file field (any name; `file` by convention) or as the raw body",
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "image/webp": _BINARY,
            "image/bmp": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}
