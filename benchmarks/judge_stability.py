"""How often does checkpoint selection's judge fail to learn? The same data and seed on 2 and 1 threads.

    python benchmarks/judge_stability.py [--seeds 3] [--steps 1000]

Selection trusts its judge (a small CNN trained on the real training split,
``augkit.stages.selection.train_judge``) only when it recognises at least 70 % of real validation
images (balanced); an untrusted judge does not pick the checkpoint. The 600-image study's judge
read 40 % trained on two threads and 85 % on one, same seed and data, when its learning rate was
constant. This trains it on four phantom settings (the 600-image study's, the quickstart's counts,
a harder chest, a brain set; splits as ``benchmarks/classifier_width.py`` makes them), seeds 0..N-1,
on 2 threads and on 1: the baseline ``constant`` (the training until 2026-12-07: Adam at a constant
2e-3, the final weights) beside ``train_judge`` as it is now (the rate annealed to zero, cosine).
``best-of-10`` is the baseline validated every 100 steps, the best round's weights kept (its
accuracy is the best of 10 rounds, so optimistic; measured, not adopted). Prints the balanced
accuracy of each run.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F

import augkit
from augkit.stages import selection as S
from augkit.stages.splits import split_by_patient

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--steps", type=int, default=1000, help="judge training steps (selection.judge_steps)")
parser.add_argument("--variants", nargs="+", default=["constant", "train_judge"],
                    help="which trainings to run: constant (the baseline), train_judge, best-of-10")
args = parser.parse_args()

SETTINGS = [  # (data set, counts, difficulty, data-set seed)
    ("chest-phantom", {"normal": 160, "bacteria": 282, "virus": 146}, 0.7, 5),   # the 600-image study's
    ("chest-phantom", {"normal": 150, "bacteria": 150, "virus": 30}, 0.7, 0),    # the quickstart's counts
    ("chest-phantom", {"normal": 160, "bacteria": 282, "virus": 146}, 0.9, 12),
    ("brain-phantom", {"tumor": 250, "no_tumor": 150}, 0.8, 13),
]


def load(name, counts, difficulty, seed):
    source = augkit.build("dataset", name, counts=counts, difficulty=difficulty, seed=seed)
    prep = augkit.build("preprocessor", "paper", image_size=56)
    samples = list(source.samples())
    images = torch.from_numpy(np.stack([prep(s.load()) for s in samples]))
    labels = torch.tensor([s.label for s in samples])
    split = split_by_patient(labels.numpy(), [s.group for s in samples], val=0.15, test=0.2, seed=0)
    part = lambda idx: augkit.LabeledImages(images[idx], labels[idx], source.classes)  # noqa: E731
    return part(split.train), part(split.val)


def balanced(judge, val) -> float:
    _, pred = judge.embed(val.images)
    recalls = [(pred[val.labels == c] == c).float().mean().item() for c in range(len(val.classes))
               if (val.labels == c).any()]
    return sum(recalls) / len(recalls)


def constant(train, val, *, seed: int, steps: int):
    """The baseline: train_judge until 2026-12-07, its learning rate constant, the final weights kept."""
    return best_of_rounds(train, val, seed=seed, steps=steps, every=steps)


def best_of_rounds(train, val, *, seed: int, steps: int, every: int = 100):
    """The baseline's training, validated every ``every`` steps, the best round's weights kept."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    judge = S.Judge(len(train.classes), train.images.shape[1])
    opt = torch.optim.Adam(judge.parameters(), lr=2e-3)
    counts = torch.bincount(train.labels, minlength=len(train.classes)).clamp_min(1).float()
    weights = (1.0 / counts)[train.labels]
    best, state = -1.0, None
    for step in range(1, steps + 1):
        judge.train()
        idx = torch.multinomial(weights, 32, replacement=True, generator=rng)
        shift = int(torch.randint(-2, 3, (1,), generator=rng))
        x = torch.roll(train.images[idx], shifts=(shift, -shift), dims=(-2, -1))
        loss = F.cross_entropy(judge(x), train.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 and (acc := balanced(judge, val)) > best:
            best, state = acc, copy.deepcopy(judge.state_dict())
    judge.load_state_dict(state)
    return judge, best


variants = {name: fit for name, fit in {"constant": constant, "train_judge": S.train_judge,
                                         "best-of-10": best_of_rounds}.items() if name in args.variants}
print(f"{'setting':<34}{'variant':<13}{'threads':>7}  balanced accuracy, seed 0..{args.seeds - 1}   s")
for name, counts, difficulty, data_seed in SETTINGS:
    train, val = load(name, counts, difficulty, data_seed)
    label = f"{name} {sum(counts.values())} d{difficulty} s{data_seed}"
    for variant, fit in variants.items():
        for threads in (2, 1):
            torch.set_num_threads(threads)
            start = time.perf_counter()
            accuracies = [fit(train, val, seed=s, steps=args.steps)[1] for s in range(args.seeds)]
            print(f"{label:<34}{variant:<13}{threads:>7}  " + "  ".join(f"{a:.2f}" for a in accuracies)
                  + f"   {time.perf_counter() - start:.0f}", flush=True)
