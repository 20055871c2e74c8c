"""Is the MS-SSIM diversity fooled by grain? Candidate measures on finished runs and built sets.

    python benchmarks/diversity_grain.py RUN_DIR [RUN_DIR ...] [--pairs 256]

For each run folder: the real training images of each class (the run's data cache and
``splits.json``) and its exported synthetic images (``synthetic/``, read back as augkit reads
them). For each class, each candidate measure's ratio ``diversity(synthetic) / diversity(real)``, where
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

import torch
from torchvision.transforms.functional import gaussian_blur

from augkit.audit import diversity as D
from augkit.pipeline import SyntheticFolder

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("runs", nargs="+", type=Path)
parser.add_argument("--pairs", type=int, default=256)
args = parser.parse_args()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return gaussian_blur(x, [2 * int(3 * sigma + 0.5) + 1] * 2, [sigma, sigma])  # reflected edges


MEASURES = {  # name: (what is done to the images, the side D.diversity averages them down to)
    "full": (lambda x: x, None),
    "blur 2": (lambda x: blur(x, 2.0), None),
    "layout 14": (lambda x: x, 14),
    "layout 10": (lambda x: x, 10),
    "layout 8": (lambda x: x, 8),
}


def reference(real: torch.Tensor, seed: int) -> dict[str, float]:
    """Each measure's figure for the real images of a class, once."""
    return {name: D.diversity(f(real), pairs=args.pairs, seed=seed, side=side) for name, (f, side) in MEASURES.items()}


def ratios(synthetic: torch.Tensor, real: dict[str, float], seed: int) -> dict[str, float]:
    return {name: D.diversity(f(synthetic), pairs=args.pairs, seed=seed, side=side) / real[name]
            for name, (f, side) in MEASURES.items()}


def real_images(run: Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    caches = sorted((run.parent / ".cache").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    data = torch.load(caches[-1], weights_only=True)
    train = torch.tensor(json.loads((run / "splits.json").read_text())["train"])
    return data["images"][train].float(), data["labels"][train], list(data["classes"])


def synthetic_images(run: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The exported images in [-1, 1] and their labels, read as augkit reads them back."""
    folder = SyntheticFolder(run / "synthetic")
    items = [folder[i] for i in range(len(folder))]
    return torch.stack([it["image"] for it in items]) * 2 - 1, torch.tensor([it["label"] for it in items])


def show(label: str, figures: dict[str, float]) -> None:
    print(f"{label:34s} " + " ".join(f"{v:8.2f}" for v in figures.values()), flush=True)


print(f"{'':34s} " + " ".join(f"{m:>8s}" for m in MEASURES))
first = None
for run in args.runs:
    real, labels, classes = real_images(run)
    synthetic, synthetic_labels = synthetic_images(run)
    figures = [reference(real[labels == c], seed=c) for c in range(len(classes))]
    first = first or (real, labels, classes, figures)
    for c, name in enumerate(classes):
        show(f"{run.name[-22:]} {name}", ratios(synthetic[synthetic_labels == c], figures[c], seed=c))

real, labels, classes, figures = first
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
        show(f"{name}: {label}", ratios(s.clamp(-1, 1), figures[c], seed=c))
