"""What a request carries and asks for: the uploaded image, ``draw=``, and the picture format by ``Accept``."""

from __future__ import annotations

from fastapi import Request

from .errors import ApiError, BodyTooLarge
from .limits import ImageHeader, ServerConfig, sniff_image

DRAW_CHOICES = ("keypoints", "mesh", "box")


async def read_image(request: Request, config: ServerConfig) -> tuple[bytes, ImageHeader]:
    """The uploaded bytes (multipart file or raw body) and their checked header."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=16, max_part_size=64 * 1024) as form:
            uploads = [v for v in form.values() if hasattr(v, "read") and hasattr(v, "filename")]
            if not uploads:
                raise ApiError(400, "no_file", "the multipart form has no file field; send the image as a file")
            data = await uploads[0].read()
        if len(data) > config.max_upload_bytes:
            raise BodyTooLarge
    else:
        data = await request.body()
    return data, sniff_image(data, config.max_pixels)


def parse_draw(values: list[str] | None, has_filter: bool) -> set[str]:
    """``draw`` values (repeated and/or comma-separated) -> a subset of DRAW_CHOICES."""
    if not values:
        return set() if has_filter else set(DRAW_CHOICES)
    out: set[str] = set()
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item in ("", "none"):
                continue
            if item == "all":
                out |= set(DRAW_CHOICES)
            elif item in DRAW_CHOICES:
                out.add(item)
            else:
                raise ApiError(
                    400, "invalid_parameter", f"draw: unknown value {item[:40]!r}; use keypoints, mesh, box or none"
                )
    return out


def negotiate_format(accept: str | None) -> str:
    """'png' or 'jpeg' from an ``Accept`` header (PNG unless JPEG is preferred); 406 if neither is allowed."""
    if not accept or not accept.strip():
        return "png"
    q = {"png": -1.0, "jpeg": -1.0}
    specificity = {"png": -1, "jpeg": -1}
    for part in accept.split(",")[:32]:
        bits = [b.strip() for b in part.split(";")]
        media = bits[0].lower()
        weight = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    weight = min(max(float(b[2:]), 0.0), 1.0)
                except ValueError:
                    weight = 0.0
        for fmt, full in (("png", "image/png"), ("jpeg", "image/jpeg")):
            level = 2 if media == full else 1 if media == "image/*" else 0 if media == "*/*" else -1
            if level > specificity[fmt]:
                specificity[fmt], q[fmt] = level, weight
    if max(q.values()) <= 0:
        raise ApiError(
            406, "not_acceptable", "this route answers image/png or image/jpeg; the Accept header allows neither"
        )
    return "jpeg" if q["jpeg"] > q["png"] else "png"
