"""A diffusion run's checkpoint, many images per class: intra-class diversity from a larger draw.

    python benchmarks/diversity_draws.py RUN_DIR [--audit AUDIT_JSON] [--per-class 300]
                                         [--sampler euler heun] [--sampling-steps 16] [--seed-offset 100]

A figure from a run's 60 images per class moves by about 0.06 (sd) from one draw to the next
(docs/generators.md, "Few sampling steps cost diversity"); near the 0.8x bar it needs more
images. This samples ``--per-class`` images of each class from ``RUN_DIR/checkpoints/best.pt``
the way a run does (``generate_batches``, batches of 64, seeded from the run's seed plus
``--seed-offset`` so that the draw is not the run's own) with each sampler, and prints each
class's diversity (1 - mean MS-SSIM on every pair, up to 50,000, of their layouts) as a ratio
to the real training images' figure in ``--audit`` (default: the run's ``audit.json``; an
evaluation's audit made since 2026-12-07 holds the real figures on every pair).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from augkit.audit import diversity as D
from augkit.stages.batches import generate_batches
from augkit_plugins.diffusion.diffusion import Diffusion

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("run", type=Path, help="a finished run folder of the diffusion generator")
parser.add_argument("--audit", type=Path, help="the audit.json whose real figures to divide by (default: the run's)")
parser.add_argument("--per-class", type=int, default=300)
parser.add_argument("--sampler", nargs="+", default=["euler", "heun"], choices=["euler", "heun"])
parser.add_argument("--sampling-steps", type=int, default=16)
parser.add_argument("--seed-offset", type=int, default=100, help="added to the run's seed: another draw than its own")
args = parser.parse_args()

recipe = yaml.safe_load((args.run / "recipe.yaml").read_text())
real = json.loads((args.audit or args.run / "audit.json").read_text())["diversity"]["per_class"]
for sampler in args.sampler:
    gen = Diffusion.load(args.run / "checkpoints" / "best.pt", sampler=sampler, sampling_steps=args.sampling_steps)
    labels = torch.arange(len(gen.classes)).repeat_interleave(args.per_class)
    batches = list(generate_batches(gen, labels, seed=recipe["seed"] + args.seed_offset, batch_size=64))
    images, drawn = torch.cat([b.images for b in batches]), torch.cat([b.labels for b in batches])
    figures = D.per_class(images, drawn, None, None, gen.classes, real_figures=[real[c]["real"] for c in gen.classes])
    print(f"{sampler} {args.sampling_steps}, {args.per_class} per class: "
          + ", ".join(f"{c} {f['ratio']:.2f}x" for c, f in figures.items()), flush=True)
