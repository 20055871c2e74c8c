"""Reading ordinary image files (JPEG, PNG, BMP, TIFF) into numpy arrays, with clear refusals."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# the only Pillow decoder each extension may start: an EPS named .png must not reach Ghostscript
DECODERS = {".jpg": ("JPEG",), ".jpeg": ("JPEG",), ".png": ("PNG",), ".bmp": ("BMP",), ".tif": ("TIFF",),
            ".tiff": ("TIFF",)}
MAX_PIXELS = 50_000_000  # the default cap; a 6000 x 6000 radiograph is 36 M
MIN_SIDE = 8  # smaller than this is a thumbnail, an icon or a broken export, never a radiograph
FORMATS = "JPEG/PNG/BMP/TIFF"

# PIL mode -> the mode we hand on; 16-bit and float modes stay as they are (np.uint16 / int32 / float32)
_CONVERT = {"1": "L", "LA": "L", "La": "L", "P": "RGB", "PA": "RGB", "RGBA": "RGB", "RGBa": "RGB", "RGBX": "RGB",
            "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB"}  # fmt: skip


def clean_message(exc: BaseException, path: str | Path) -> str:
    """An exception's text with the file's path and name taken out (they may name a patient)."""
    text = str(exc) or type(exc).__name__
    path = Path(path)
    for secret in sorted({str(path), path.as_posix(), str(path.resolve()), path.name}, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "<file>")
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # "<_io.BytesIO object at 0x7f...>": differs run to run


def check_size(array: np.ndarray) -> np.ndarray:
    """Refuse images too small to be a medical image (1x1 exports, icons)."""
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image has shape {array.shape}; expected (H, W) or (H, W, C)")
    h, w = array.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    return array


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A JPEG / PNG / BMP / TIFF file -> (H, W) uint8 / uint16 or (H, W, 3) uint8.

    Grayscale stays grayscale, 16-bit stays 16-bit; palette, alpha and CMYK images become
    RGB. Only the decoder the extension names is tried (a file of another format is refused,
    never decoded), and an image of more than ``max_pixels`` pixels (read from its header) is
    refused before it is decoded. Raises ``ValueError`` for empty, truncated, unreadable, tiny,
    oversized and non-regular files; the message never contains the path.
    """
    check_regular(path)
    formats = DECODERS.get(Path(path).suffix.lower())
    if formats is None:
        raise ValueError(f"not one of the extensions {', '.join(IMAGE_SUFFIXES)}")
    data = _read_bytes(path)
    if not data:
        raise ValueError("file is empty (0 bytes)")
    try:
        # from memory, so PIL's messages quote a BytesIO, not the path
        with Image.open(io.BytesIO(data), formats=formats) as image:
            if image.width * image.height > max_pixels:
                raise _Refused(f"image is {image.width}x{image.height} pixels, more than the cap of {max_pixels:,} "
                               "(the source's max_pixels option)")
            image.load()  # decodes now: a truncated file fails here, not later
            image = ImageOps.exif_transpose(image)
            mode = _CONVERT.get(image.mode, image.mode)
            if mode != image.mode:
                image = image.convert(mode)
            array = np.array(image)
    except _Refused as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:
        reason = clean_message(exc, path)
        if "cannot identify image file" in reason:
            reason = f"the file is not a {'/'.join(formats)} image, as its extension says"
        if "truncated" in reason.lower() and "file is truncated" not in reason:
            reason = f"the file is truncated ({reason})"
        raise ValueError(f"not a readable {FORMATS} image: {reason}") from None
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return check_size(array)


class _Refused(Exception):
    """A refusal decided before decoding (its text is the reason, with no path)."""


def check_regular(path: str | Path) -> None:
    """Refuse (``ValueError``, no path) what is not a regular file: a FIFO would block the read forever,
    a dangling link or a file that went away cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ValueError("the file is gone or is a dangling link") from None
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
    if not stat.S_ISREG(mode):
        raise ValueError("not a regular file (a FIFO, socket or device): not read")


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the file: {exc.strerror or type(exc).__name__}") from None
