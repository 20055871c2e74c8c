"""Is the MS-SSIM diversity fooled by grain? Candidate measures on finished runs and built sets.

    python benchmarks/diversity_grain.py RUN_DIR [RUN_DIR ...] [--pairs 256]

For each run folder: the real training images of each class (the run's data cache and
``splits.json``) and its exported synthetic images (``synthetic/<class>/*.png``). For each
class, each candidate measure's ratio ``diversity(synthetic) / diversity(real)``, where
``diversity = 1 - mean MS-SSIM`` over random pairs, and the images are first

* ``full``: as they are (the audit's measure until 2026-12-04);
* ``blur 2``: low-passed with a Gaussian of s.d. 2 pixels;
* ``layout n``: averaged over blocks down to about n px a side (``augkit.audit.diversity.layout``;
  the audit compares ``LAYOUT`` px layouts since 2026-12-04).

Then the same ratios for sets built from the first run's real images, whose answer is known:
``real + grain`` (varied: every real image with its own smooth blotchy texture, s.d. 0.15 at
about 2 px), ``real, blurred`` (varied, soft: what an undertrained diffusion model draws),
``one image + grain`` (collapsed: one real image, each copy with its own texture) and
``one image + pixel noise`` (collapsed). A measure worth keeping reads about 1 or more on the
varied sets and far below 0.5 on the collapsed ones; look at each run's grid beside its figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from augkit.audit import diversity as D

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("runs", nargs="+", type=Path)
parser.add_argument("--pairs", type=int, default=256)
args = parser.parse_args()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-t**2 / (2 * sigma**2))
    g = (g / g.sum()).to(x)
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


MEASURES = {  # name: (what is done to the images, the side D.diversity averages them down to)
    "full": (lambda x: x, None),
    "blur 2": (lambda x: blur(x, 2.0), None),
    "layout 14": (lambda x: x, 14),
    "layout 10": (lambda x: x, 10),
    "layout 8": (lambda x: x, 8),
}


def ratios(synthetic: torch.Tensor, real: torch.Tensor, seed: int) -> dict[str, float]:
    out = {}
    for name, (f, side) in MEASURES.items():
        s, r = (D.diversity(f(x), pairs=args.pairs, seed=seed, side=side) for x in (synthetic, real))
        out[name] = s / r
    return out


def real_images(run: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    caches = sorted((run.parent / ".cache").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    data = torch.load(caches[-1], weights_only=True)
    train = torch.tensor(json.loads((run / "splits.json").read_text())["train"])
    return data["images"][train].float(), data["labels"][train], list(data["classes"])


def synthetic_images(run: Path, name: str) -> torch.Tensor:
    files = sorted((run / "synthetic" / name).glob("*.png"))
    arrays = [np.asarray(Image.open(f).convert("L"), dtype=np.float32) / 127.5 - 1 for f in files]
    return torch.from_numpy(np.stack(arrays))[:, None]


def show(label: str, figures: dict[str, float]) -> None:
    print(f"{label:34s} " + " ".join(f"{v:8.2f}" for v in figures.values()), flush=True)


print(f"{'':34s} " + " ".join(f"{m:>8s}" for m in MEASURES))
for run in args.runs:
    real, labels, classes = real_images(run)
    for c, name in enumerate(classes):
        show(f"{run.name[-22:]} {name}", ratios(synthetic_images(run, name), real[labels == c], seed=c))

real, labels, classes = real_images(args.runs[0])
g = torch.Generator().manual_seed(0)
for c, name in enumerate(classes):
    x = real[labels == c][:64]
    n, shape = len(x), x.shape[1:]
    grain = lambda k: 0.15 * blur(torch.randn(k, *shape, generator=g), 2.0) / 0.14  # noqa: E731  (s.d. ~0.15)
    sets = {
        "real + grain": x + grain(n),
        "real, blurred": blur(x, 1.5),
        "one image + grain": x[:1] + grain(n),
        "one image + pixel noise 0.1": x[:1] + 0.1 * torch.randn(n, *shape, generator=g),
    }
    for label, s in sets.items():
        show(f"{name}: {label}", ratios(s.clamp(-1, 1), real[labels == c], seed=c))
