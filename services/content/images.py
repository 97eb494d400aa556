"""Reading an uploaded image safely: the type from its bytes, size and pixel limits before decoding, EXIF gone.

What the file is called or claims to be does not matter: Pillow identifies it from its magic bytes, and only
JPEG, PNG and WebP are accepted (SVG, HTML, ZIP and everything else are not images to us). The pixel count in
the header is checked before a single pixel is decoded, so a small file that would inflate to gigabytes (a
decompression bomb) is refused for the cost of reading its header. The image is then decoded and encoded anew,
which keeps its pixels (turned upright by its EXIF orientation) and colour profile and drops everything else:
EXIF with its GPS position and camera serial, XMP, comments, text chunks, trailing data.

CPU-bound and blocking: callers run `process_image` in a worker thread.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from services.errors import DomainError, ErrorCode

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
JPEG_QUALITY = 88
THUMBNAIL_QUALITY = 80


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes
    thumbnail_content_type: str
    thumbnail_extension: str


def _open(data: bytes, max_pixels: int) -> Image.Image:
    # Pillow's own guard, in case a decoder is reached some other way: it raises at twice this many pixels.
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(max_pixels) from None
    except UnidentifiedImageError:
        raise DomainError(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Only JPEG, PNG and WebP images can be uploaded", "file"
        ) from None
    except (OSError, ValueError, SyntaxError):
        raise DomainError(
            ErrorCode.IMAGE_CORRUPT, "The image is damaged and cannot be read", "file"
        ) from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise _too_large(max_pixels)
    return image


def _too_large(max_pixels: int) -> DomainError:
    return DomainError(
        ErrorCode.IMAGE_TOO_LARGE,
        f"The image has more than {max_pixels:,} pixels; send a smaller one",
        "file",
    )


def _encode(image: Image.Image, fmt: str, icc_profile: bytes | None, quality: int) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "JPEG":
        image.save(out, "JPEG", quality=quality, optimize=True, **extra)
    elif fmt == "PNG":
        image.save(out, "PNG", **extra)
    else:
        image.save(out, "WEBP", quality=quality, **extra)
    return out.getvalue()


def _normalised(image: Image.Image, fmt: str) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if fmt == "JPEG":
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.convert("RGBA" if has_alpha else "RGB")


def process_image(data: bytes, max_pixels: int, thumbnail_size: int) -> ProcessedImage:
    """The upload re-encoded without metadata, and a thumbnail within `thumbnail_size` pixels square.

    Raises DomainError UNSUPPORTED_MEDIA_TYPE (not a JPEG, PNG or WebP by its bytes), IMAGE_TOO_LARGE (more
    than `max_pixels`, checked before decoding) or IMAGE_CORRUPT (it does not decode).
    """
    image = _open(data, max_pixels)
    fmt = str(image.format)
    icc_profile = image.info.get("icc_profile")
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError):
        raise DomainError(
            ErrorCode.IMAGE_CORRUPT, "The image is damaged and cannot be read", "file"
        ) from None
    clean = _normalised(upright, fmt)
    body = _encode(clean, fmt, icc_profile, JPEG_QUALITY)
    thumb = clean.copy()
    thumb.thumbnail((thumbnail_size, thumbnail_size), Image.Resampling.LANCZOS)
    thumb_format = "PNG" if thumb.mode in ("RGBA", "LA") else "JPEG"
    return ProcessedImage(
        data=body,
        content_type=CONTENT_TYPES[fmt],
        extension=EXTENSIONS[fmt],
        width=clean.width,
        height=clean.height,
        thumbnail=_encode(thumb, thumb_format, icc_profile, THUMBNAIL_QUALITY),
        thumbnail_content_type=CONTENT_TYPES[thumb_format],
        thumbnail_extension=EXTENSIONS[thumb_format],
    )
