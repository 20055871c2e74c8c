"""Calibration and power of the study's comparison on simulated studies (augkit.testing.null_studies).

    python benchmarks/calibration.py            # ~3 minutes on 2 cores
    python benchmarks/calibration.py --studies 200

For several study shapes (seeds, model spread, patient clustering) it prints the share of simulated
studies called significant at 0.05, for the comparison augkit uses (``augkit.outputs.stats.compare``:
training runs + test patients) and for the test-image bootstrap it replaced (``bootstrap_seeds``):
under the null (the two regimes equal) that share is the false-positive rate, which should be 0.05;
with a real difference it is the power. The figures in docs/evaluation.md come from this script.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from augkit.outputs import stats
from augkit.testing import null_studies as ns

SHAPES = {
    "default (3 seeds, 200 patients, ~620 images)": {},
    "2 seeds (the quickstart)": {"seeds": 2},
    "5 seeds": {"seeds": 5},
    "10 seeds, wide model spread": {"seeds": 10, "model_sd": 0.3},
    "narrow model spread (~1.5 %)": {"model_sd": 0.05},
    "wide model spread (~5 %)": {"model_sd": 0.35},
    "60 patients x 5 images, strong clustering": {"patients": 60, "images_per_patient": 5, "patient_sd": 1.5},
}


def rate(shape: ns.StudyShape, studies: int, difference: float, seed: int, n_boot: int) -> tuple[float, float, float]:
    """(new test's rate, old test's rate, mean per-model accuracy spread) over ``studies`` simulated studies."""
    rng = np.random.default_rng(seed)
    f1 = stats.metric_fn("f1", shape.classes)
    acc = stats.metric_fn("accuracy", shape.classes)
    new = old = 0
    spread = []
    for i in range(studies):
        y, groups, a, b = ns.study(rng, shape, difference)
        spread.append(np.std([acc(y, p) for p in a + b], ddof=1))
        new += ns.p_value(y, groups, a, b, f1, n_boot=n_boot, seed=i) < 0.05
        old += stats.bootstrap_seeds(y, a, f1, reference=b, n_boot=n_boot, seed=i)["p_value"] < 0.05
    return new / studies, old / studies, float(np.mean(spread))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=1000, help="simulated studies per shape (null)")
    parser.add_argument("--power-studies", type=int, default=300, help="simulated studies per power row")
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()
    t = time.perf_counter()
    print(f"false-positive rate at 0.05 (null: equal regimes), {args.studies} studies per shape, macro F1")
    print("| study shape | per-model accuracy SD | augkit (runs + patients) | test images only (before) |")
    print("|---|---:|---:|---:|")
    for name, kw in SHAPES.items():
        new, old, spread = rate(ns.StudyShape(**kw), args.studies, 0.0, 1, args.n_boot)
        print(f"| {name} | {100 * spread:.1f} % | {new:.3f} | {old:.3f} |")
    print()
    print(f"power at 0.05 (a real difference), {args.power_studies} studies per row, default shape, macro F1")
    print("| seeds | logit difference | accuracy difference | augkit power |")
    print("|---:|---:|---:|---:|")
    for seeds in (3, 5, 10):
        for difference in (0.2, 0.4, 0.8):
            shape = ns.StudyShape(seeds=seeds)
            new, _, _ = rate(shape, args.power_studies, difference, 2, args.n_boot)
            gain = _accuracy_gain(shape, difference)
            print(f"| {seeds} | {difference} | {100 * gain:+.1f} points | {new:.2f} |")
    print(f"\n{time.perf_counter() - t:.0f} s")


def _accuracy_gain(shape: ns.StudyShape, difference: float, n: int = 200) -> float:
    """The accuracy difference a logit difference makes, averaged over simulated studies."""
    rng = np.random.default_rng(3)
    acc = stats.metric_fn("accuracy", shape.classes)
    gains = []
    for _ in range(n):
        y, _, a, b = ns.study(rng, shape, difference)
        gains.append(np.mean([acc(y, p) for p in a]) - np.mean([acc(y, p) for p in b]))
    return float(np.mean(gains))


if __name__ == "__main__":
    main()
