"""PNG exporter: one grayscale (or RGB) PNG per synthetic image, plus manifest.csv."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field
from torch import Tensor

import augkit

MANIFEST_FIELDS = ["file", "class", "generator", "generator_version", "checkpoint_sha256", "seed", "index", "recipe_sha256"]


def to_uint(images: Tensor, bits: int) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W[, C]) unsigned integers of ``bits`` depth."""
    top = 2**bits - 1
    x = ((images.float().clamp(-1, 1) + 1) / 2 * top).round().numpy()
    x = x.astype(np.uint16 if bits == 16 else np.uint8)
    return x[:, 0] if x.shape[1] == 1 else x.transpose(0, 2, 3, 1)


class PNGExporter(augkit.Exporter):
    """Writes ``<out>/<class>/<class>_<index>.png`` and ``<out>/manifest.csv``."""

    class Options(augkit.Exporter.Options):
        bits: Literal[8, 16] = Field(8, description="bit depth; 16-bit only for grayscale")

    def export(
        self,
        batches: Iterable[tuple[Tensor, Tensor, int]],
        classes: list[str],
        out_dir: Path,
        provenance: dict[str, Any],
    ) -> Path:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest = out_dir / "manifest.csv"
        written = [0] * len(classes)
        with open(manifest, "x", newline="") as f:  # "x": never overwrite an earlier export
            writer = csv.DictWriter(f, MANIFEST_FIELDS)
            writer.writeheader()
            for images, labels, seed in batches:
                pixels = to_uint(images, self.options.bits)
                if self.options.bits == 16 and pixels.ndim == 4:
                    raise ValueError("exporter.options.bits: 16-bit PNG is for grayscale images; use bits: 8 for RGB")
                for i, (img, label) in enumerate(zip(pixels, labels.tolist())):
                    name = classes[label]
                    rel = Path(name) / f"{name}_{written[label]:06d}.png"
                    (out_dir / name).mkdir(exist_ok=True)
                    Image.fromarray(img).save(out_dir / rel)
                    written[label] += 1
                    writer.writerow(
                        {
                            "file": rel.as_posix(),
                            "class": name,
                            "generator": provenance.get("generator"),
                            "generator_version": provenance.get("generator_version"),
                            "checkpoint_sha256": provenance.get("checkpoint_sha256"),
                            "seed": seed,
                            "index": i,
                            "recipe_sha256": provenance.get("recipe_sha256"),
                        }
                    )
        return manifest
