"""Why selection's old feature diversity read ~1 for identical images, measured.

    python benchmarks/feature_diversity.py [--size 56] [--difficulty 0.7] [--data-seed 0]

Trains selection's judge (the small CNN, 1,000 steps) on the quickstart's phantom training
images, then embeds sets of 32 images per class that are, by construction, one image repeated
with a little pixel noise (what a collapsed generator draws), and prints for each set: the
old feature diversity (mean pairwise feature distance / the real class's), the MS-SSIM
diversity ratio that replaced it, and the mean feature norm against the real images'.

* ``real``: 32 real training images of the class (the reference: both ratios near 1);
* ``one real image``: one real training image, repeated, plus noise of s.d. 0.02;
* ``one blob``: a blurred, off-distribution image (a smoothed random field, what the
  collapsed checkpoints drew), repeated, plus noise of s.d. 0.02 (and 0.1).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

import augkit
from augkit.audit import diversity as D
from augkit.stages.selection import _mean_pairwise, train_judge

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--difficulty", type=float, default=0.7)
parser.add_argument("--data-seed", type=int, default=0)
args = parser.parse_args()

source = augkit.build("dataset", "chest-phantom", counts={"normal": 150, "bacteria": 150, "virus": 30},
                      difficulty=args.difficulty, seed=args.data_seed)
prep = augkit.build("preprocessor", "paper", image_size=args.size)
samples = list(source.samples())
images = torch.from_numpy(np.stack([prep(s.load()) for s in samples]))
labels = torch.tensor([s.label for s in samples])
order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
images, labels = images[order], labels[order]
cut = int(0.8 * len(labels))
train = augkit.LabeledImages(images[:cut], labels[:cut], source.classes)
val = augkit.LabeledImages(images[cut:], labels[cut:], source.classes)
judge, accuracy = train_judge(train, val, seed=0)
print(f"judge: balanced accuracy {accuracy:.2f} on real validation images ({args.size} px, difficulty "
      f"{args.difficulty})")

g = torch.Generator().manual_seed(1)
print(f"{'class':10s} {'set':18s} {'feature div.':>13s} {'MS-SSIM div.':>13s} {'feature norm / real':>20s}")
for c, name in enumerate(source.classes):
    real = train.images[train.labels == c]
    feats_real, _ = judge.embed(real)
    base_features, base_norm = _mean_pairwise(feats_real[:256]), feats_real.norm(dim=1).mean().item()
    base_ssim = D.diversity(real, seed=c)
    blob = F.avg_pool2d(torch.randn(1, 1, args.size, args.size, generator=g), 9, 1, 4)
    blob = (blob / blob.abs().max()).clamp(-1, 1)
    sets = {
        "real": real[:32],
        "one real image": real[:1] + 0.02 * torch.randn(32, *real.shape[1:], generator=g),
        "one blob": blob + 0.02 * torch.randn(32, *real.shape[1:], generator=g),
        "one blob, s.d. 0.1": blob + 0.1 * torch.randn(32, *real.shape[1:], generator=g),
    }
    for label, x in sets.items():
        x = x.clamp(-1, 1)
        feats, _ = judge.embed(x)
        print(f"{name:10s} {label:18s} {_mean_pairwise(feats) / base_features:13.2f} "
              f"{D.diversity(x, seed=c) / base_ssim:13.2f} {feats.norm(dim=1).mean().item() / base_norm:20.2f}")
