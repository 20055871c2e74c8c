"""A trained diffusion run's checkpoint, sampled at several guidance scales: MS-SSIM diversity per class.

    python benchmarks/diffusion_guidance.py RUN_DIR [--guidance 1 1.5 2 3] [--per-class 60] [--seeds 1 2]

Samples ``--per-class`` images of each class from ``RUN_DIR/checkpoints/best.pt`` at each guidance
scale and sampling seed, and prints each class's diversity (1 - mean MS-SSIM between pairs, 256
pairs, as the audit measures it) as a ratio to the real training images' figure in the run's
``audit.json``. Only sampling changes: no training. Two sampling seeds show how far the figure
moves by chance alone (docs/generators.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from augkit.audit import diversity as D
from augkit_plugins.diffusion.diffusion import Diffusion

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("run", type=Path, help="a finished run folder of the diffusion generator")
parser.add_argument("--guidance", nargs="+", type=float, default=[1.0, 1.5, 2.0, 3.0])
parser.add_argument("--per-class", type=int, default=60, help="images per class (the quickstart's synthetic.per_class)")
parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="sampling seeds")
args = parser.parse_args()

real = json.loads((args.run / "audit.json").read_text())["diversity"]["per_class"]
print(f"{'guidance':>8s} {'class':>12s} " + " ".join(f"{'seed ' + str(s):>8s}" for s in args.seeds)
      + f" {'mean':>6s} {'s / seed':>9s}")
for g in args.guidance:
    gen = Diffusion.load(args.run / "checkpoints" / "best.pt", guidance=g)
    labels = torch.arange(len(gen.classes)).repeat_interleave(args.per_class)
    ratios: dict[str, list[float]] = {name: [] for name in gen.classes}
    start = time.perf_counter()
    for seed in args.seeds:
        images = torch.cat([gen.sample(labels[labels == c], seed=seed) for c in range(len(gen.classes))])
        figures = D.per_class(images, labels, None, None, gen.classes,  # the audit's measure, its real figures
                              real_figures=[real[name]["real"] for name in gen.classes])
        for name, f in figures.items():
            ratios[name].append(f["ratio"])
    seconds = (time.perf_counter() - start) / len(args.seeds)
    for name, values in ratios.items():
        print(f"{g:8.1f} {name:>12s} " + " ".join(f"{v:8.2f}" for v in values)
              + f" {statistics.mean(values):6.2f} {seconds:9.0f}", flush=True)
