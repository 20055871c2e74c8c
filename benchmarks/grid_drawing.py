"""Drawing a sample grid: one tiled image in one axes against an axes per image.

    python benchmarks/grid_drawing.py [--images 12 24 64] [--size 16 56] [--repeats 5]

Baseline: ``report.image_grid`` as it was until 2026-12-07, a matplotlib axes per image
(reproduced below). Every run draws a grid per class of the synthetic and the real images, and
one per scored checkpoint; a tiny recipe draws 9. Each (images, size) case draws with both,
interleaved and repeated so that a machine's drift hits them alike, after one untimed warm-up
each (matplotlib loads its fonts once per process). Prints each case's median seconds per grid
and the ratio baseline / now, PNG encoding and the atomic write included.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from augkit.outputs import report

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--images", type=int, nargs="+", default=[12, 24, 64])
parser.add_argument("--size", type=int, nargs="+", default=[16, 56])
parser.add_argument("--repeats", type=int, default=5)
args = parser.parse_args()


def axes_per_image(images: torch.Tensor, path: Path, *, title: str, columns: int = 8) -> None:
    """The baseline: image_grid until 2026-12-07."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig = report.figure((columns * 1.2, rows * 1.2 + 0.4))
    axes = fig.subplots(rows, columns, squeeze=False)
    pixels = ((images.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = pixels[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title)
    report.save(fig, path)


def smooth_images(n: int, size: int) -> torch.Tensor:
    """Blurred noise in [-1, 1]: compresses like an image does (white noise would time the PNG encoder)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, max(2, size // 4), max(2, size // 4), generator=g)
    return torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear") * 2 - 1


out = Path(tempfile.mkdtemp())
ways = {"baseline: an axes per image": axes_per_image, "now: one tiled image": report.image_grid}
for fn in ways.values():
    fn(smooth_images(8, 16), out / "warm.png", title="warm-up")
print(f"{'images':>6} {'px':>4}  " + "  ".join(f"{name:>28}" for name in ways) + "   ratio")
for n in args.images:
    for size in args.size:
        images = smooth_images(n, size)
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.repeats):
            for name, fn in ways.items():
                t = time.perf_counter()
                fn(images, out / "grid.png", title=f"{n} images")
                times[name].append(time.perf_counter() - t)
        med = {name: statistics.median(v) for name, v in times.items()}
        base, now = med.values()
        print(f"{n:>6} {size:>4}  " + "  ".join(f"{m:>26.3f} s" for m in med.values()) + f"   {base / now:.2f}x")
