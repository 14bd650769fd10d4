"""Reading QR codes from photos with zxing-cpp: rotated, scaled, JPEG-compressed pictures."""

from __future__ import annotations

import io
from pathlib import Path

import zxingcpp
from PIL import Image, UnidentifiedImageError

from chain.errors import InputError


class ScanError(InputError):
    """A photo in which no code can be read."""


MAX_PIXELS = 40_000_000  # a 40-megapixel photo is plenty; larger is refused, not decoded


def load_image(source: bytes | str | Path | Image.Image) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise ScanError("image_too_large", f"the image has {img.width}x{img.height} pixels; at most 40 million")
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise ScanError("image_unreadable", f"not a readable image: {type(exc).__name__}") from None
    return img.convert("L") if img.mode not in ("L", "RGB") else img


def scan(source: bytes | str | Path | Image.Image) -> list[str]:
    """The texts of every QR code in the picture; ScanError('no_code') when there is none."""
    img = load_image(source)
    found = [r.text for r in zxingcpp.read_barcodes(img, formats=zxingcpp.BarcodeFormat.QRCode) if r.valid]
    if not found:
        raise ScanError("no_code", "no QR code found in the picture")
    return found
