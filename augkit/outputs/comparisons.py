"""The study's answer, from its saved predictions: intervals, comparisons against the controls, the verdict.

Everything the results table and the verdict say is computed here from one object, the test-set
predictions of every classifier the study trained (:class:`Predictions`, saved as
``predictions.csv`` in the run folder), so a reviewer can re-run the analysis, or another one, on
them::

    from augkit.outputs import comparisons
    p = comparisons.read_predictions("runs/quickstart-20261125-190000/predictions.csv")
    result = comparisons.analyse(p)
    print("\\n".join(result["verdict"]))
    comparisons.compare_regimes(p, "fake+real", "real+classic", "f1")   # one comparison

Inference (``augkit.outputs.stats.compare``) counts the training runs (classifier seeds, and
generator seeds when the study has several) and the test patients; docs/evaluation.md says why and
shows its calibration. The comparisons are every regime against ``real`` and every synthetic regime
against each matched control the study trained (``augkit.config.regimes.comparisons``); their
p-values are Holm-adjusted per metric over that family.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augkit.config import regimes as regime_table
from augkit.outputs import stats

METRICS = ("accuracy", "f1")  # the ones compared; the headline is F1
HEADLINE = "f1"
ALPHA = 0.05


@dataclass(frozen=True)
class Run:
    """One trained classifier's test-set probabilities: (N, K), rows in the test split's order."""

    seed: int
    proba: np.ndarray
    generator_seed: int | None = None  # the generator training whose images it saw (None: no synthetic images)

    @property
    def predicted(self) -> np.ndarray:
        return self.proba.argmax(1)


@dataclass
class Predictions:
    """Every classifier of a study on the real test split: what the analysis needs, nothing identifying.

    ``groups`` holds one code per test image for its patient (``t1``, ``t2``, ... in order of first
    appearance: same code, same patient), or None when the data has no patients.
    """

    classes: list[str]
    labels: np.ndarray
    groups: list[str] | None
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def predicted(self, regime: str) -> list[np.ndarray]:
        return [r.predicted for r in self.runs[regime]]

    def levels(self, regime: str) -> list | None:
        levels = [r.generator_seed for r in self.runs[regime]]
        return None if all(lv is None for lv in levels) else levels


def write_predictions(p: Predictions) -> list[dict]:
    """The rows of ``predictions.csv`` (regime, generator_seed, seed, image, label, group, p_<class>...)."""
    rows = []
    for regime, runs in p.runs.items():
        for run in runs:
            for i, (label, proba) in enumerate(zip(p.labels, run.proba)):
                rows.append({"regime": regime, "generator_seed": "" if run.generator_seed is None else run.generator_seed,
                             "seed": run.seed, "image": i, "label": p.classes[int(label)],
                             "group": "" if p.groups is None else p.groups[i],
                             **{f"p_{c}": f"{float(v):.6g}" for c, v in zip(p.classes, proba)}})
    return rows


def read_predictions(path: Path | str) -> Predictions:
    """A study's ``predictions.csv`` back as :class:`Predictions`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c.startswith("p_")]
        rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: no predictions")
    classes = [c.removeprefix("p_") for c in columns]
    first = (rows[0]["regime"], rows[0]["generator_seed"], rows[0]["seed"])
    test = [r for r in rows if (r["regime"], r["generator_seed"], r["seed"]) == first]
    labels = np.array([classes.index(r["label"]) for r in test])
    groups = None if all(r["group"] == "" for r in test) else [r["group"] for r in test]
    runs: dict[str, list[Run]] = {}
    current: dict[tuple, list] = {}
    for r in rows:
        current.setdefault((r["regime"], r["generator_seed"], r["seed"]), []).append([float(r[c]) for c in columns])
    for (regime, gen, seed), proba in current.items():
        if len(proba) != len(labels):
            raise ValueError(f"{path}: {regime} seed {seed} has {len(proba)} rows for {len(labels)} test images")
        runs.setdefault(regime, []).append(Run(int(seed), np.array(proba), None if gen == "" else int(gen)))
    return Predictions(classes, labels, groups, runs)


def pools(p: Predictions, metric: str) -> dict:
    """The study's pooled training variance of ``metric`` per unit kind (runs; generators), over every regime:
    the regimes share the classifier, its budget and the test split, and 2 or 3 runs of one regime alone
    estimate their spread badly (two runs can agree by chance)."""
    score = stats.metric_fn(metric, len(p.classes))
    by_kind: dict[str, list[np.ndarray]] = {}
    for regime in p.runs:
        units, kind = stats.training_units(np.array([score(p.labels, y) for y in p.predicted(regime)]), p.levels(regime))
        by_kind.setdefault(kind, []).append(units)
    return {kind: stats.pooled_variance(units) for kind, units in by_kind.items()}


def compare_regimes(p: Predictions, a: str, b: str | None, metric: str = HEADLINE, *, n_boot: int = 2000,
                    confidence: float = 0.95, seed: int = 0, pooled: bool = True, pool: dict | None = None) -> dict:
    """``a`` against ``b`` (or ``a`` alone with ``b`` None) on one metric: ``augkit.outputs.stats.compare``,
    with the training variance pooled over the study's regimes (``pooled``; ``pool``: :func:`pools` of
    ``metric``, when the caller already has it)."""
    if pooled and pool is None:
        pool = pools(p, metric)
    return stats.compare(
        p.labels, p.predicted(a), None if b is None else p.predicted(b), stats.metric_fn(metric, len(p.classes)),
        groups=p.groups, a_levels=p.levels(a), b_levels=None if b is None else p.levels(b), n_boot=n_boot,
        confidence=confidence, seed=seed, pool=pool if pooled else None)


def analyse(p: Predictions, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0,
            generator_seeds: int | None = None) -> dict:
    """Per regime its intervals; the comparisons with raw and Holm-adjusted p-values; the verdict lines.

    ``generator_seeds``: how many generator trainings the study had (for the note on what the intervals
    do not cover); default: read from the predictions.
    """
    regimes = list(p.runs)
    pooled = {m: pools(p, m) for m in METRICS}  # one estimate per metric, shared by every comparison
    settings = {"n_boot": n_boot, "confidence": confidence, "seed": seed}
    intervals = {r: {m: compare_regimes(p, r, None, m, pool=pooled[m], **settings) for m in METRICS} for r in regimes}
    rows = [{"regime": a, "reference": b, **{m: compare_regimes(p, a, b, m, pool=pooled[m], **settings)
                                             for m in METRICS}} for a, b in regime_table.comparisons(regimes)]
    for m in METRICS:
        for row, adjusted in zip(rows, stats.holm([row[m]["p_value"] for row in rows])):
            row[m]["p_holm"] = adjusted
    if generator_seeds is None:
        generator_seeds = max((len({r.generator_seed for r in runs}) for runs in p.runs.values()
                               if any(r.generator_seed is not None for r in runs)), default=0)
    seeds = min((len(runs) for runs in p.runs.values()), default=0)
    return {"intervals": intervals, "comparisons": rows, "confidence": confidence,
            "not_covered": not_covered(seeds, generator_seeds, any(regime_table.uses_synthetic(r) for r in regimes)),
            "verdict": verdict(rows, confidence)}


def not_covered(seeds: int, generator_seeds: int, synthetic: bool) -> list[str]:
    """The sources of variance the intervals leave out, as sentences."""
    out = []
    if seeds < 2:
        out.append("classifier training variance: one seed per regime (evaluation.seeds: 1), so the intervals "
                   "count the test split only")
    if synthetic and generator_seeds < 2:
        out.append("generator training variance: the synthetic images come from one generator training "
                   "(evaluation.generator_seeds: 1); another training of the generator could give other numbers")
    return out


_BEYOND = {"real": "the real images alone", "real+classic": "classical augmentation",
           "real+oversample": "oversampling the minority classes"}


def sentence(row: dict, confidence: float = 0.95, metric: str = HEADLINE) -> str:
    """One comparison as a reader's sentence: difference, interval, Holm p, and what it means."""
    c = row[metric]
    a, b = row["regime"], row["reference"]
    name = "F1" if metric == "f1" else metric.replace("_", " ")
    figures = (f"{c['estimate']:+.3f} {name} ({100 * confidence:g} % CI {c['low']:+.3f} to {c['high']:+.3f}, "
               f"Holm p {format_p(c['p_holm'])})")
    beyond = _BEYOND.get(b, b)
    synthetic = regime_table.uses_synthetic(a)
    significant = c["p_holm"] is not None and c["p_holm"] < ALPHA
    if not synthetic:
        meaning = (f"{a} is {'better' if c['estimate'] > 0 else 'worse'} than {b}" if significant
                   else f"no evidence of a difference between {a} and {b} (inconclusive)")
    elif not regime_table.parse(a)[0].uses_real:
        meaning = (f"synthetic images alone train a {'better' if c['estimate'] > 0 else 'worse'} classifier than "
                   f"{beyond}" if significant else
                   f"no evidence of a difference between synthetic images alone and {beyond} (inconclusive)")
    elif significant and c["estimate"] > 0:
        meaning = f"evidence that synthetic images help beyond {beyond}"
    elif significant:
        meaning = f"evidence that synthetic images do worse than {beyond}"
    else:
        meaning = f"no evidence that synthetic images help beyond {beyond} (inconclusive)"
    return f"{a} vs {b}: {figures}: {meaning}."


def format_p(p: float | None) -> str:
    """``= 0.41``, ``= 0.003``, ``< 0.001``: a p-value as a sentence shows it."""
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


def verdict(rows: list[dict], confidence: float = 0.95) -> list[str]:
    """The headline: one sentence per comparison of a regime with synthetic and real images, those against
    the matched controls (the decisive ones) first, then those against real."""
    augmenting = [row for row in rows
                  if regime_table.uses_synthetic(row["regime"]) and regime_table.parse(row["regime"])[0].uses_real]
    control = regime_table.control()
    ordered = [r for r in augmenting if r["reference"] != control] + [r for r in augmenting if r["reference"] == control]
    return [sentence(row, confidence) for row in ordered]


# real-only balanced accuracy this close to chance (1 / classes) or below: the reviewer warns
CHANCE_MARGIN = 0.05


def reviewer_warnings(metrics: dict, test_counts: list[int], classes: list[str], min_per_class: int = 10) -> list[str]:
    """What a careful reviewer would say about these numbers."""
    warnings = []
    if sum(test_counts) < 100:
        warnings.append(f"the test split has only {sum(test_counts)} images: expect wide confidence intervals")
    for name, n in zip(classes, test_counts):
        if n < min_per_class:
            warnings.append(f"class {name} has {n} test images (< {min_per_class}): its precision and recall are unreliable")
    regimes = metrics["regimes"]
    chance = 1 / len(classes) if classes else None
    real = regimes.get("real", {}).get("balanced_accuracy")
    at_chance = chance is not None and real is not None and real < chance + CHANCE_MARGIN
    if at_chance:
        warnings.append(
            f"real-only classifiers are at chance: balanced accuracy {real:.2f}, chance {chance:.2f} for "
            f"{len(classes)} classes; they learnt nothing the test split shows, so the comparisons with real and "
            "with the matched controls cannot show an effect either way: train longer (classifier.options.epochs, "
            "evaluation.budget) or on more real images"
        )
    if "fake" in regimes and "real" in regimes and regimes["fake"]["accuracy"] > regimes["real"]["accuracy"]:
        warnings.append(
            # beating classifiers that learnt nothing hints at neither leakage nor better images
            "fake-only beats real-only, whose classifiers are at chance: the real-only trainings learnt too little "
            "to compare with, so this says nothing of leakage or of the synthetic images; train longer first"
            if at_chance else
            "fake-only beats real-only: check for leakage between generator training and the test split, "
            "or a task too easy to tell anything apart"
        )
    return warnings
