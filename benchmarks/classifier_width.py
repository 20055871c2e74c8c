"""Does a narrower EfficientNetV2-B0, or a larger batch, hold accuracy? Real-only classifiers side by side.

    python benchmarks/classifier_width.py [--widths 1.0 0.5] [--batch-sizes 16] [--seeds 3] [--size 56] [--threads N]

On several phantom settings (chest and brain, two difficulties, a data-set seed nobody tuned
on), trains the ``efficientnetv2`` plugin on the real training split with the quickstart's
classifier options at each channel width, and prints test accuracy and macro F1 (mean and
standard deviation over training seeds) and seconds per training. Width 1.0 is timm's
``tf_efficientnetv2_b0``; a width w multiplies every stage's channels (timm's
``channel_multiplier``). ``--batch-sizes`` tries other batch sizes at the same learning rate and
epochs (fewer optimizer steps for larger batches). ``--threads 1`` times a training as the study's
side-by-side workers run it: start two such processes at once, one per configuration, so that
both are timed under the same load.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import augkit
from augkit.outputs import metrics as M
from augkit.stages.splits import split_by_patient

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--widths", type=float, nargs="+", default=[1.0, 0.5])
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core)")
args = parser.parse_args()
if args.threads:
    torch.set_num_threads(args.threads)

SETTINGS = [  # (data set, counts, difficulty, data-set seed)
    ("chest-phantom", {"normal": 160, "bacteria": 282, "virus": 146}, 0.7, 11),
    ("chest-phantom", {"normal": 160, "bacteria": 282, "virus": 146}, 0.9, 12),
    ("brain-phantom", {"tumor": 250, "no_tumor": 150}, 0.8, 13),
]


def load(name, counts, difficulty, seed):
    source = augkit.build("dataset", name, counts=counts, difficulty=difficulty, seed=seed)
    prep = augkit.build("preprocessor", "paper", image_size=args.size)
    samples = list(source.samples())
    images = torch.from_numpy(np.stack([prep(s.load()) for s in samples]))
    labels = torch.tensor([s.label for s in samples])
    split = split_by_patient(labels.numpy(), [s.group for s in samples], val=0.15, test=0.2, seed=0)
    part = lambda idx: augkit.LabeledImages(images[idx], labels[idx], source.classes)  # noqa: E731
    return part(split.train), part(split.val), part(split.test)


print(f"{'setting':<36} {'width':>5} {'batch':>5} {'accuracy':>15} {'macro F1':>15} {'s / training':>12}")
for name, counts, difficulty, data_seed in SETTINGS:
    train, val, test = load(name, counts, difficulty, data_seed)
    for width, batch in [(w, b) for w in args.widths for b in args.batch_sizes]:
        acc, f1, secs = [], [], []
        for seed in range(args.seeds):
            clf = augkit.build("classifier", "efficientnetv2", image_size=args.size, epochs=20, min_epochs=12,
                               batch_size=batch, width=width)
            start = time.perf_counter()
            for _ in clf.fit(train, val, seed=seed):
                pass
            secs.append(time.perf_counter() - start)
            pred = clf.predict_proba(test.images).argmax(1).numpy()
            m = M.from_confusion(M.confusion_matrix(test.labels.numpy(), pred, len(test.classes)), test.classes)
            acc.append(m["accuracy"])
            f1.append(m["f1"])
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
        label = f"{name} d={difficulty} seed {data_seed}"
        print(f"{label:<36} {width:>5.2f} {batch:>5d} {statistics.mean(acc):>8.3f} ± {sd(acc):.3f} "
              f"{statistics.mean(f1):>8.3f} ± {sd(f1):.3f} {statistics.mean(secs):>12.1f}", flush=True)
