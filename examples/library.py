"""augkit as a library: the same power as `augkit run`, from Python.

    python examples/library.py            # about 20 seconds on 2 CPU cores

1. build plugins by name and train a tiny AC-GAN on embedded phantom data;
2. sample a class-balanced synthetic set with a fixed seed;
3. run a whole recipe (given as a dict) into a new run folder.
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch

import augkit

# 1. data: any DataSource plugin, preprocessed by any Preprocessor plugin
source = augkit.build("dataset", "chest-phantom", counts={"normal": 20, "bacteria": 20, "virus": 8})
prep = augkit.build("preprocessor", "paper", image_size=32)
samples = list(source.samples())
images = torch.from_numpy(np.stack([prep(s.load()) for s in samples]))  # (N, 1, 32, 32) in [-1, 1]
labels = torch.tensor([s.label for s in samples])
train = augkit.LabeledImages(images, labels, source.classes)

# 2. a generator: fit yields log rows; show them, log them, or stop early as you like
gan = augkit.build("generator", "acgan", image_size=32, width=32, iterations=50, batch_size=16, log_every=25)
for row in gan.fit(train, seed=0):
    if "g_loss" in row:
        print(f"step {row['step']:>3}  d_loss {row['d_loss']:.3f}  g_loss {row['g_loss']:.3f}")

virus = source.classes.index("virus")
synthetic = gan.sample(torch.full((8,), virus), seed=1)  # same seed -> same images
print("synthetic virus images:", tuple(synthetic.shape))

# 3. a whole recipe, as a mapping (or a path to YAML); returns the new run folder
recipe = {
    "name": "library-demo",
    "image_size": 16,
    "dataset": {"name": "chest-phantom", "options": {"counts": {"normal": 24, "bacteria": 24, "virus": 12}}},
    "generator": {"options": {"width": 16, "iterations": 20, "batch_size": 16}},
    "synthetic": {"per_class": 8},
    "classifier": {"options": {"variant": "test_efficientnet", "epochs": 1, "batch_size": 16}},
    "selection": {"judge_steps": 150},  # the default 1,000 would be most of this demo's time
    "evaluation": {"seeds": 1, "ratios": []},  # one training per regime, no ratio sweep: a demo
}
with tempfile.TemporaryDirectory() as out:
    run_dir = augkit.run(recipe, out)
    print((run_dir / "results.md").read_text())
