"""Generators side by side: collapse, fidelity against the floors, usefulness, copies, time.

    python benchmarks/generators.py [--configs old new] [--settings quickstart chest-harder brain-harder]
                                    [--seeds 3] [--first-seed 0] [--regimes real fake] [--out DIR]

Every (setting, configuration, seed) is one ``augkit run`` of examples/quickstart_acgan.yaml (the
quickstart's data, classifier and study with the AC-GAN) with the setting's data and the
configuration's generator options (``--set``), in a fresh process, one after the other (2 cores:
never two at once). The seed is the recipe's: it seeds the split, the generator and the
classifiers. Prints, per setting and configuration, means over seeds of:

* intra-class diversity (1 - MS-SSIM between pairs, synthetic / real; the worst class);
* the audit's per-class recall and coverage as a fraction of their real-vs-real floors (the
  worst class);
* fake-only accuracy (CAS) as a fraction of real-only, and each study regime's macro F1;
* near copies, the generator stage's seconds and the run's.

and writes ``results.json`` and each run's last sample grid under --out. docs/generators.md
holds the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]
RECIPE = ROOT / "examples" / "quickstart_acgan.yaml"
DIFFUSION = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())  # the quickstart's generator

# augkit's AC-GAN defaults before the remedies (2026-12-01), spelt out: each remedy changes one of them
OLD = ["generator.options.ema_statistics=live", "generator.options.fake_class_loss=true",
       "generator.options.class_loss=ce", "generator.options.loss=bce", "generator.options.label_smoothing=0.1",
       "generator.options.spectral_norm=false", "generator.options.spectral_norm_g=false",
       "generator.options.mode_seeking=0"]
CONFIGS = {
    "old": OLD,
    "ema-bn": [*OLD, "generator.options.ema_statistics=own"],  # the EMA's own batch-norm statistics
    "no-fake-class": [*OLD, "generator.options.fake_class_loss=false"],
    "hinge": [*OLD, "generator.options.loss=hinge", "generator.options.label_smoothing=0"],
    "sn": [*OLD, "generator.options.spectral_norm=true", "generator.options.spectral_norm_g=true"],
    "mode-seeking": [*OLD, "generator.options.mode_seeking=1"],
    "d2d-ce": [*OLD, "generator.options.class_loss=d2d-ce", "generator.options.fake_class_loss=false"],
    "d2d-ms": [*OLD, "generator.options.class_loss=d2d-ce", "generator.options.fake_class_loss=false",
               "generator.options.mode_seeking=1"],
    "d2d-ms-half": [*OLD, "generator.options.class_loss=d2d-ce", "generator.options.fake_class_loss=false",
                    "generator.options.mode_seeking=0.5"],
    "new": [],  # today's defaults
    # the diffusion plugin as examples/quickstart.yaml runs it (its generator and checkpoints)
    "diffusion": [f"generator={json.dumps(DIFFUSION['generator'])}",
                  f"checkpoint_every={DIFFUSION['checkpoint_every']}"],
}
# the quickstart's generator made cheaper, one change each (2026-12-07, docs/generators.md): a UNet with half the
# channels in its first three levels (0.55x the time of a training step and of a sampling pass on an AVX2 CPU), or
# in its second and third only (0.70x), or the same UNet for 330 steps (what the first saves)
CONFIGS["diffusion-small"] = [*CONFIGS["diffusion"], "generator.options.widths=[8, 16, 32, 64]",
                              "generator.options.norm_groups=8"]
CONFIGS["diffusion-mid"] = [*CONFIGS["diffusion"], "generator.options.widths=[16, 16, 32, 64]"]
CONFIGS["diffusion-330"] = [*CONFIGS["diffusion"], "generator.options.iterations=330", "checkpoint_every=330"]
SETTINGS = {
    "quickstart": [],
    "chest-harder": ['dataset.options.counts={"normal": 300, "bacteria": 300, "virus": 60}',
                     "dataset.options.difficulty=0.85", "dataset.options.seed=21"],
    "brain-harder": ["dataset.name=brain-phantom", 'dataset.options.counts={"tumor": 240, "no_tumor": 120}',
                     "dataset.options.difficulty=0.85", "dataset.options.seed=22"],
}

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--configs", nargs="+", default=["old", "new"], choices=sorted(CONFIGS))
parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=sorted(SETTINGS))
parser.add_argument("--seeds", type=int, default=3)
parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed, first-seed + 1, ... (add seeds to a comparison)")
parser.add_argument("--regimes", nargs="+", default=["real", "fake", "fake+real", "real+classic", "fake+real+classic"])
parser.add_argument("--set", nargs="*", default=[], help="further overrides for every run, KEY=VALUE")
parser.add_argument("--out", default="/tmp/augkit-generators")
args = parser.parse_args()
if args.first_seed < 0 or args.seeds < 1:
    parser.error(f"--first-seed must be >= 0 and --seeds >= 1 (got {args.first_seed} and {args.seeds})")
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)


def run(setting: str, config: str, seed: int) -> dict:
    overrides = [*SETTINGS[setting], *CONFIGS[config], f"seed={seed}", "evaluation.seeds=1",
                 f"evaluation.regimes={json.dumps(args.regimes)}", *args.set]
    command = [sys.executable, "-m", "augkit", "run", str(RECIPE), "--out", str(out / "runs")]
    for kv in overrides:
        command += ["--set", kv]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{setting} {config} seed {seed}: augkit run failed:\n{done.stderr[-3000:]}")
    folder = Path(done.stdout.strip().splitlines()[-1])
    audit = json.loads((folder / "audit.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    timings = json.loads((folder / "timings.json").read_text())
    per_class = audit["fidelity"]["per_class"]
    floors = {m: [b["synthetic"][m]["mean"] / max(b["real_floor"][m]["mean"], 1e-9)
                  for b in per_class.values() if "synthetic" in b] for m in ("recall", "coverage")}
    regimes = metrics["regimes"]
    grids = sorted((folder / "samples").glob("iter_*.png"))
    if grids:
        shutil.copy(grids[-1], out / f"{setting}-{config}-s{seed}.png")
    return {
        "folder": str(folder),
        "diversity": min(f["ratio"] for f in audit["diversity"]["per_class"].values()),
        "diversity_per_class": {c: f["ratio"] for c, f in audit["diversity"]["per_class"].items()},
        "diversity_interval_per_class": {c: f.get("ratio_interval") for c, f in audit["diversity"]["per_class"].items()},
        "recall_vs_floor": min(floors["recall"]), "coverage_vs_floor": min(floors["coverage"]),
        "cas": regimes["fake"]["accuracy"] / max(regimes["real"]["accuracy"], 1e-9) if "fake" in regimes else None,
        "f1": {r: v["f1"] for r, v in regimes.items()},
        "near_copies": audit["memorisation"]["near_copies"],
        "generator_s": timings["generator"],
        "wall_s": sum(timings.values()),
    }


results = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {}
for setting in args.settings:
    for seed in range(args.first_seed, args.first_seed + args.seeds):  # seed by seed: a comparison cut short still compares every configuration
        for config in args.configs:
            key = f"{setting}/{config}/{seed}"
            # an interrupted comparison goes on where it stopped; other --set values are another comparison
            if key not in results or results[key].get("set", []) != args.set:
                results[key] = {**run(setting, config, seed), "set": args.set}
                (out / "results.json").write_text(json.dumps(results, indent=2))
                print(f"{key}: {json.dumps({k: v for k, v in results[key].items() if k not in ('folder', 'set')})}", flush=True)


def mean(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {sd:.2f}" if len(values) > 1 else f"{values[0]:.2f}"


columns = ["diversity", "recall_vs_floor", "coverage_vs_floor", "cas", "near_copies", "generator_s", "wall_s"]
print(f"\n{'setting':14s} {'config':14s} " + " ".join(f"{c:>18s}" for c in columns)
      + "".join(f"{'F1 ' + r:>22s}" for r in args.regimes))
for setting in args.settings:
    for config in args.configs:
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        rows = [results[f"{setting}/{config}/{s}"] for s in seeds if f"{setting}/{config}/{s}" in results]
        print(f"{setting:14s} {config:14s} " + " ".join(f"{mean([r[c] for r in rows]):>18s}" for c in columns)
              + "".join(f"{mean([r['f1'].get(g) for r in rows]):>22s}" for g in args.regimes))
