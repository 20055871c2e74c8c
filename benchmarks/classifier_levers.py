"""Does the recipe's classifier learn on its real data? One lever at a time, several seeds.

    python benchmarks/classifier_levers.py examples/quickstart.yaml \\
        [--set KEY=VALUE ...] [--seeds 0 1 2] [--options '{}' '{"epochs": 40, "min_epochs": 24}' ...]

Loads and splits the recipe's data as a run does (the data cache under --cache), then for each
JSON object of ``--options`` (classifier options over the recipe's) trains the recipe's
classifier on the real training split, early stopping on the validation split, and prints per
seed the balanced accuracy on the test split, the epochs run, which classes it predicted and
the seconds; then the mean. Real data only: it asks whether the classifier can learn what the
images show at a budget, before any synthetic image is judged by it. docs/benchmarks.md
("Early stopping from min_epochs") holds the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from sklearn.metrics import balanced_accuracy_score

from augkit.config.recipe import load_recipe
from augkit.outputs.progress import no_progress
from augkit.stages import prepare

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("recipe", type=Path)
parser.add_argument("--set", nargs="*", default=[], help="recipe overrides, KEY=VALUE")
parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
parser.add_argument("--options", nargs="+", default=["{}"], help="classifier options as JSON, one lever each")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--cache", type=Path, default=Path("/tmp/augkit-classifier-levers"))
args = parser.parse_args()
torch.set_num_threads(args.threads)

resolved = load_recipe(args.recipe, overrides=args.set)
loaded = prepare.load_data(resolved, resolved.build("dataset"), resolved.build("preprocessor"), args.cache, no_progress)
splits, _ = prepare.split_data(resolved, loaded)
train, val, test = splits["train"], splits["val"], splits["test"]
cls, base = resolved.plugins["classifier"]
print(f"{args.recipe} {args.set}: train {len(train)}, val {len(val)}, test {len(test)} images; "
      f"classifier {resolved.recipe.classifier.name}")
for extra in args.options:
    overrides = json.loads(extra)
    scores = []
    for seed in args.seeds:
        clf = cls(cls.Options(**{**base.model_dump(), **overrides}))
        start = time.perf_counter()
        rows = list(clf.fit(train, val, seed=seed))
        predicted = clf.predict_proba(test.images).argmax(1)
        scores.append(balanced_accuracy_score(test.labels.numpy(), predicted.numpy()))
        counts = torch.bincount(predicted, minlength=len(train.classes)).tolist()
        print(f"  {overrides} seed {seed}: balanced accuracy {scores[-1]:.3f}, {len(rows)} epochs, "
              f"predicted per class {counts}, {time.perf_counter() - start:.0f} s", flush=True)
    print(f"{overrides}: mean balanced accuracy {statistics.mean(scores):.3f} over seeds {args.seeds}")
