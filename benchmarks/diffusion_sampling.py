"""A trained diffusion run's checkpoint, sampled several ways: MS-SSIM diversity per class.

    python benchmarks/diffusion_sampling.py RUN_DIR [--guidance 1 1.5 2 3] [--sampling-steps 16 64]
                                           [--shift 1 3] [--sampler euler heun] [--per-class 60] [--seeds 1 2]

Samples ``--per-class`` images of each class from ``RUN_DIR/checkpoints/best.pt`` at each guidance
scale, number of sampling steps, sampling shift and sampler (default: the checkpoint's own) and
sampling seed, and prints each class's diversity (1 - mean MS-SSIM between pairs, as the audit
measures it) as a ratio to the real training images' figure in the run's ``audit.json`` (the
same figure for every row, so rows compare pair for pair). Only sampling changes: no training. Two sampling seeds show how far the figure
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
parser.add_argument("--sampling-steps", nargs="+", type=int, default=[None],
                    help="denoising steps per sample (default: the checkpoint's)")
parser.add_argument("--shift", nargs="+", type=float, default=[None],
                    help="sampling_shift: above 1 the steps crowd the noisiest levels (default: the checkpoint's)")
parser.add_argument("--sampler", nargs="+", default=[None], help="euler or heun (default: the checkpoint's)")
parser.add_argument("--per-class", type=int, default=60, help="images per class (the quickstart's synthetic.per_class)")
parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2], help="sampling seeds")
args = parser.parse_args()

real = json.loads((args.run / "audit.json").read_text())["diversity"]["per_class"]
print(f"{'guidance':>8s} {'steps':>5s} {'shift':>5s} {'sampler':>7s} {'class':>12s} " + " ".join(f"{'seed ' + str(s):>8s}" for s in args.seeds)
      + f" {'mean':>6s} {'s / seed':>9s}")
grid = [(g, n, s, m) for g in args.guidance for n in args.sampling_steps for s in args.shift for m in args.sampler]
for g, steps, shift, sampler in grid:
    chosen = {"sampling_steps": steps, "sampling_shift": shift, "sampler": sampler}
    gen = Diffusion.load(args.run / "checkpoints" / "best.pt", guidance=g,
                         **{k: v for k, v in chosen.items() if v is not None})
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
        print(f"{g:8.1f} {gen.options.sampling_steps:5d} {gen.options.sampling_shift:5.1f} {gen.options.sampler or 'heun':>7s} {name:>12s} " + " ".join(f"{v:8.2f}" for v in values)
              + f" {statistics.mean(values):6.2f} {seconds:9.0f}", flush=True)
