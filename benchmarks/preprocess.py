"""Preprocessing speed: 1024-px JPEGs through image-folder + the paper's pipeline at 112 px.

    python benchmarks/preprocess.py [--images 96]

Baseline: one process. Compared side by side in the same session: all cores, and the
cached re-run (same data and options: nothing is preprocessed again).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import augkit
from augkit.stages.data import load_and_preprocess

parser = argparse.ArgumentParser()
parser.add_argument("--images", type=int, default=96)
args = parser.parse_args()


def make_jpegs(root: Path, n: int) -> None:
    phantom = augkit.build("dataset", "chest-phantom", image_size=256, counts={"normal": n // 2, "bacteria": n - n // 2, "virus": 1})
    for i, s in enumerate(phantom.samples()):
        if i >= n:
            break
        folder = root / phantom.classes[s.label]
        folder.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(s.load()).resize((1024, 1024), Image.BICUBIC)
        noisy = np.clip(np.asarray(big, np.float32) + np.random.default_rng(i).normal(0, 4, (1024, 1024)), 0, 255)
        Image.fromarray(noisy.astype(np.uint8)).save(folder / f"{i:05d}.jpeg", quality=92)


with tempfile.TemporaryDirectory() as tmp:
    root, cache = Path(tmp) / "data", Path(tmp) / "cache"
    make_jpegs(root, args.images)
    source = augkit.build("dataset", "image-folder", root=root)
    prep = augkit.build("preprocessor", "paper", image_size=112)
    kw = dict(source_name="image-folder", prep_name="paper")

    def timed(**extra) -> float:
        t = time.perf_counter()
        loaded = load_and_preprocess(source, prep, **kw, **extra)
        assert len(loaded.data) == args.images and not loaded.skipped
        return time.perf_counter() - t

    one = timed(cache_dir=None, workers=1)
    cores = os.cpu_count() or 1
    many = timed(cache_dir=None, workers=cores)
    timed(cache_dir=cache, workers=cores)  # fills the cache
    cached = timed(cache_dir=cache, workers=cores)

print(f"{args.images} JPEGs of 1024x1024 -> 112x112 (image-folder + paper preprocessing)")
print(f"baseline, 1 process:      {args.images / one:7.1f} images/s")
print(f"all {cores} cores:              {args.images / many:7.1f} images/s   ({one / many:.2f}x the baseline)")
print(f"cached re-run:            {cached:7.3f} s total    ({one / cached:.0f}x faster than the baseline)")
