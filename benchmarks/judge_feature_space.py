"""A run's synthetic images audited again in a feature space that can tell the classes apart.

    python benchmarks/judge_feature_space.py RUN_DIR [RUN_DIR ...]

The audit's default feature space is the recipe's classifier trained on the real training split
(``real-classifier``). At a CPU budget that classifier can be near chance (the quickstart's
EfficientNetV2-B0 recognises 42 % of held-out images, balanced, at 18 epochs; 33 % before early
stopping started at ``min_epochs``), and then every
feature-space figure of the audit (precision, recall, density, coverage, FD, label faithfulness)
is measured in a space that cannot tell the classes apart; the run warns, but the figures still
read "at the floor". This re-reads a run (its data as ``augkit evaluate`` reads it: the recipe,
the data cache beside the run, ``splits.json``; the exported PNGs under ``synthetic/``) and audits its synthetic images with
the same ``Auditor`` in the space of checkpoint selection's small CNN (the ``small-cnn``
feature extractor: ``augkit.stages.selection.train_judge``, trained on the run's real training
split with the run's seed; held-out images: the validation split, as the run's audit uses them). Prints each
class's figures beside their real-vs-real floors and how often the CNN recognises the requested
class. A measurement: it changes nothing in the run (a run gets this space with
``feature_extractor: {name: small-cnn}``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import augkit
from augkit.audit.auditor import Auditor
from augkit.config.recipe import load_recipe
from augkit.outputs.progress import no_progress
from augkit.outputs.run_folder import RunFolder
from augkit.stages import prepare

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR", help="finished run folders")
args = parser.parse_args()

METRICS = ("precision", "recall", "density", "coverage", "fd")


def load(run: Path):
    """The run's recipe, its real training and validation splits (as ``augkit evaluate`` reads them: the data
    cache beside the run, its fingerprint checked) and its exported synthetic images."""
    folder = RunFolder(run)
    resolved = load_recipe(folder.file(RunFolder.RECIPE))
    loaded = prepare.load_data(resolved, resolved.build("dataset"), resolved.build("preprocessor"), run.parent,
                               no_progress)
    prepare.check_fingerprint(folder, loaded.data, f"audit {run.name} again")
    split = folder.read_json(RunFolder.SPLITS)
    train, val = (loaded.data.subset(split[k]) for k in ("train", "val"))
    synthetic, synthetic_labels = [], []
    for c, name in enumerate(loaded.data.classes):
        for f in sorted((run / "synthetic" / name).glob("*.png")):  # 8-bit PNGs of [-1, 1] images
            synthetic.append(torch.from_numpy(np.asarray(Image.open(f), dtype=np.float32) / 127.5 - 1)[None])
            synthetic_labels.append(c)
    return resolved.recipe.seed, train, val, torch.stack(synthetic), torch.tensor(synthetic_labels)

for run in args.runs:
    seed, train, val, synthetic, synthetic_labels = load(run)
    extractor = augkit.build("feature_extractor", "small-cnn")  # selection's judge, as a feature extractor plugin
    balanced = list(extractor.fit(train, val, seed=seed))[-1]["val_balanced_accuracy"]
    auditor = Auditor(extractor, train, val)
    screen, feats = auditor.screen(synthetic, synthetic_labels)
    fidelity = auditor.fidelity(feats, synthetic_labels)
    run_audit = json.loads((run / "audit.json").read_text())
    weak = run_audit.get("faithfulness", {}).get("real_heldout") or {}
    print(f"{run.name}: small CNN recognises {balanced:.0%} of held-out real images (balanced); "
          f"the run's own feature space {weak.get('balanced_accuracy', float('nan')):.0%}")
    print(f"  {'class':<10}" + "".join(f"{m + ' syn/floor':>20}" for m in METRICS))
    for name, figures in [*fidelity["per_class"].items(), ("overall", fidelity["overall"])]:
        if "synthetic" not in figures:
            print(f"  {name:<10}  {figures.get('note', 'not measured')}")
            continue
        s, f = figures["synthetic"], figures["real_floor"]
        print(f"  {name:<10}" + "".join(f"{s[m]['mean']:>11.2f} / {f[m]['mean']:<6.2f}" for m in METRICS))
    recognised = [(screen.recognised[synthetic_labels == c] == c).float().mean().item() for c in range(len(train.classes))]
    print("  recognised as the requested class: " + ", ".join(
        f"{name} {r:.0%}" for name, r in zip(train.classes, recognised)))
