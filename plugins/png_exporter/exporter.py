"""PNG exporter: one grayscale (or RGB) PNG per synthetic image, plus manifest.csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field
from torch import Tensor

import augkit


def to_uint(images: Tensor, bits: int) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W[, C]) unsigned integers of ``bits`` depth."""
    top = 2**bits - 1
    x = ((images.float().clamp(-1, 1) + 1) / 2 * top).round().numpy()
    x = x.astype(np.uint16 if bits == 16 else np.uint8)
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


class PNGExporter(augkit.Exporter):
    """Writes ``<out>/<class>/<class>_<n>.png`` and ``<out>/manifest.csv``."""

    suffix = ".png"

    class Options(augkit.Exporter.Options):
        bits: Literal[8, 16] = Field(8, description="bit depth; 16-bit only for grayscale")

    def pixels(self, images: Tensor) -> np.ndarray:
        pixels = to_uint(images, self.options.bits)
        if self.options.bits == 16 and pixels.ndim == 4:
            raise ValueError("exporter.options.bits: 16-bit PNG is for grayscale images; use bits: 8 for RGB")
        return pixels

    def write_image(self, pixels: np.ndarray, path: Path, **_: Any) -> None:
        Image.fromarray(pixels).save(path)

    @classmethod
    def read_image(cls, path: Path) -> np.ndarray:
        """(H, W) or (H, W, C) float32 in [0, 1], from 8- or 16-bit files."""
        with Image.open(path) as im:
            x = np.asarray(im, dtype=np.float32)
        return x / (65535.0 if x.max() > 255 else 255.0)
