"""Honest statistics for the classifier study: AUC, seed CIs, bootstrap CIs, paired tests.

A single test-set number hides two sources of noise: the training seed (``mean_ci`` over
seeds) and the finite test set (``bootstrap_seeds`` over test images). Comparing two models on
the same test images is a paired question (``bootstrap_seeds`` with a ``reference``: both
scored on the same resampled images), never two overlapping intervals. numpy and scipy
only, so the core stays light.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from augkit.outputs.metrics import SCORES, confusion_matrix, from_confusion, scores

MetricName = Literal["accuracy", "balanced_accuracy", "precision", "recall", "f1"]
_CHUNK = 1_000_000  # resampled labels held in memory at once, whatever the test-set size


def _labels(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a) for a in arrays]
    n = len(out[0])
    for a in out:
        if a.ndim != 1 or len(a) != n:
            raise ValueError(f"labels must be 1-D and of equal length, got shapes {[x.shape for x in out]}")
        if not np.issubdtype(a.dtype, np.integer) or (n and a.min() < 0):
            raise ValueError("labels must be non-negative integers")
    if n == 0:
        raise ValueError("no test images")
    return out


@dataclass(frozen=True)
class Metric:
    """A scalar metric from the confusion matrix, callable as ``metric(y_true, y_pred)``.

    It also scores a stack of confusion matrices at once (``from_confusions``), which lets
    the bootstrap count all resamples with one ``bincount`` instead of a Python loop.
    ``n_classes`` fixes K so a class missing from a resample still counts (as 0) in a macro
    mean, as ``augkit.outputs.metrics.from_confusion`` does; ``None`` (accuracy only) infers it.
    """

    name: MetricName
    n_classes: int | None = None

    def __post_init__(self):
        if self.name not in SCORES:
            raise ValueError(f"unknown metric {self.name!r}; choose from {SCORES}")
        if self.n_classes is None and self.name != "accuracy":
            raise ValueError(f"{self.name} is a macro mean over classes: give n_classes")

    def classes_for(self, *label_arrays: np.ndarray) -> int:
        """K for these labels: the fixed ``n_classes``, or (accuracy) max label + 1."""
        k = max(int(a.max()) for a in label_arrays) + 1
        if self.n_classes is None:
            return k
        if k > self.n_classes:
            raise ValueError(f"label {k - 1} out of range for n_classes={self.n_classes}")
        return self.n_classes

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        y_true, y_pred = _labels(y_true, y_pred)
        cm = confusion_matrix(y_true, y_pred, self.classes_for(y_true, y_pred))
        return from_confusion(cm)[self.name]

    def from_confusions(self, cms: np.ndarray) -> np.ndarray:
        """(B, K, K) confusion matrices -> (B,) scores: ``augkit.outputs.metrics.scores``, which ``from_confusion`` uses."""
        return scores(cms)[self.name]


def metric_fn(name: MetricName, n_classes: int | None = None) -> Metric:
    """A bootstrap-ready ``(y_true, y_pred) -> float`` for one of ``from_confusion``'s metrics."""
    return Metric(name, n_classes)


def roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray) -> dict:
    """One-vs-rest ROC-AUC per class and their macro mean, from (N,) labels and (N, K) scores.

    AUC is the Mann-Whitney statistic: the chance that a random positive outscores a random
    negative, ties counting one half (average ranks). A class with no positives or no
    negatives has no AUC: it is ``None`` and left out of the macro mean, not scored 0.5.
    """
    (y_true,) = _labels(y_true)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or len(proba) != len(y_true):
        raise ValueError(f"proba must be (N, K) with N={len(y_true)}, got {proba.shape}")
    if not np.isfinite(proba).all():
        raise ValueError("proba has NaN or infinite scores")
    if y_true.max() >= proba.shape[1]:
        raise ValueError(f"label {y_true.max()} out of range for {proba.shape[1]} score columns")
    per_class: list[float | None] = []
    for k in range(proba.shape[1]):
        positive = y_true == k
        n_pos, n_neg = int(positive.sum()), int((~positive).sum())
        if n_pos == 0 or n_neg == 0:
            per_class.append(None)
            continue
        ranks = sps.rankdata(proba[:, k])  # method="average": ties share their mean rank
        u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
        per_class.append(float(u / (n_pos * n_neg)))
    defined = [a for a in per_class if a is not None]
    return {"macro": float(np.mean(defined)) if defined else None, "per_class": per_class}


def mean_ci(values: Sequence[float], confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean over seeds with a Student-t interval: ``{"mean", "low", "high", "n", "std"}``.

    ``std`` is the sample standard deviation (ddof=1). One seed carries no information about
    seed-to-seed spread, so then ``low``, ``high`` and ``std`` are ``None``, never a fake CI.
    ``bounds`` clips the interval to the metric's range (a t interval over 2 seeds can
    otherwise claim an accuracy above 100 %).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError("need a non-empty 1-D sequence of values")
    if np.isnan(x).any():
        raise ValueError("values contain NaN (a failed run?); drop or fix it explicitly")
    _check_confidence(confidence)
    n, mean = len(x), float(x.mean())
    if n == 1:
        return {"mean": mean, "low": None, "high": None, "n": 1, "std": None}
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "low": low, "high": high, "n": n, "std": std}


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _resamples(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """(b, n) index chunks, b summing to n_boot; same seed -> same indices on every path."""
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK // n)
    for start in range(0, n_boot, step):
        yield rng.integers(0, n, size=(min(step, n_boot - start), n))


def _boot_scores(metric: Callable, y_true: np.ndarray, preds: list[np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """(len(preds), n_boot) metric values, every prediction scored on the same resamples."""
    out = np.empty((len(preds), n_boot))
    done = 0
    if isinstance(metric, Metric):
        k = metric.classes_for(y_true, *preds)
        codes = [y_true * k + p for p in preds]  # cell of the confusion matrix per image
    for idx in _resamples(len(y_true), n_boot, seed):
        b = len(idx)
        for j, p in enumerate(preds):
            if isinstance(metric, Metric):
                out[j, done : done + b] = metric.from_confusions(_confusions(codes[j][idx], k))
            else:
                out[j, done : done + b] = [metric(y_true[i], p[i]) for i in idx]
        done += b
    return out


def _confusions(cells: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(b, n) confusion-matrix cells (``true * k + predicted``) of b resamples -> (b, k, k) matrices, each
    image counted once or with its weight: one bincount for all of them."""
    b = len(cells)
    flat = (cells + (np.arange(b) * k * k)[:, None]).ravel()
    return np.bincount(flat, weights=None if weights is None else weights.ravel(),
                       minlength=b * k * k).reshape(b, k, k)


def _two_sided_p(diffs: np.ndarray, difference: float) -> float:
    """Twice the share of bootstrap differences at or beyond zero on the far side from the
    observed one, with the +1 correction so it is never 0, capped at 1; 1 with no difference."""
    if difference == 0:
        return 1.0
    count = int((diffs <= 0).sum() if difference > 0 else (diffs >= 0).sum())
    return min(1.0, 2 * (count + 1) / (len(diffs) + 1))


def bootstrap_seeds(
    y_true: np.ndarray,
    preds: Sequence[np.ndarray],
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    reference: Sequence[np.ndarray] | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict:
    """The seed-averaged metric over resampled test images, optionally paired with a baseline.

    ``preds`` holds one prediction vector per training seed. Every seed, and every seed of
    ``reference``, is scored on the same resampled images, so the interval is the test-set
    noise of the seed mean, and ``difference`` / ``p_value`` compare the two seed means
    image by image (a paired bootstrap). Returns
    ``{"estimate", "low", "high"}`` plus ``{"difference", "diff_low", "diff_high", "p_value"}``
    with a reference.
    """
    arrays = _labels(y_true, *preds, *(reference or ()))
    y_true, preds, reference = arrays[0], arrays[1 : 1 + len(preds)], arrays[1 + len(preds) :]
    _check_confidence(confidence)
    alpha = 1 - confidence
    boot = _boot_scores(metric, y_true, [*preds, *reference], n_boot, seed)
    mine = boot[: len(preds)].mean(0)
    estimate = float(np.mean([metric(y_true, p) for p in preds]))
    low, high = np.quantile(mine, [alpha / 2, 1 - alpha / 2])
    out = {"estimate": estimate, "low": float(low), "high": float(high)}
    if reference:
        diffs = mine - boot[len(preds) :].mean(0)
        difference = estimate - float(np.mean([metric(y_true, p) for p in reference]))
        p_value = _two_sided_p(diffs, difference)
        d_low, d_high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
        out.update(difference=difference, diff_low=float(d_low), diff_high=float(d_high), p_value=p_value)
    return out


# --- inference over the units that vary: training runs and test patients --------------------------------------------
#
# ``compare`` adds two parts of the variance of a regime's mean (or of a difference of two): the training part
# (the spread between runs, or generators, optionally pooled over a study's regimes) and the test part (a cluster
# bootstrap over the test patients), with a Student t whose degrees of freedom come from Welch-Satterthwaite.
# docs/evaluation.md explains the choice and shows its calibration and power.


def _cluster_weights(groups: Sequence | None, n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """(b, n) image weights of ``n_boot`` cluster-bootstrap resamples, in chunks: a patient drawn k times weighs k.

    ``groups`` (one per image; None: every image its own patient) -> the patients are resampled with
    replacement, as many as there are; every image of a patient takes its patient's count.
    """
    if n_boot < 1:
        raise ValueError("n_boot must be >= 1")
    if groups is None:
        inverse, g = np.arange(n), n
    else:
        if len(groups) != n:
            raise ValueError(f"{len(groups)} groups for {n} test images")
        first: dict = {}  # patients numbered by first appearance: the resamples do not depend on the ids' values
        inverse = np.array([first.setdefault(x, len(first)) for x in groups])
        g = len(first)
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK // max(n, g))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        counts = rng.multinomial(g, np.full(g, 1 / g), size=b)  # (b, g): draws of each patient
        yield counts[:, inverse]


def _weighted_scores(metric: Metric, y_true: np.ndarray, preds: list[np.ndarray], weights: np.ndarray, k: int
                     ) -> np.ndarray:
    """(len(preds), b) metric of each prediction on each weighted resample (one weighted bincount each)."""
    cells = [np.broadcast_to(y_true * k + p, weights.shape) for p in preds]
    return np.stack([metric.from_confusions(_confusions(c, k, weights)) for c in cells])


GENERATOR_UNITS = "generator and classifier seeds"
RUN_UNITS = "classifier seeds"


def training_units(scores: np.ndarray, levels: Sequence | None) -> tuple[np.ndarray, str]:
    """A regime's independent training units and what they cover.

    ``levels``: the generator seed of each run, or None. With two or more generator seeds the unit is a
    generator (its runs averaged), which covers generator and classifier variance; otherwise a run.
    """
    scores = np.asarray(scores, dtype=float)
    if levels is not None and len(set(levels)) > 1:
        keys = list(dict.fromkeys(levels))
        return np.array([scores[[i for i, lv in enumerate(levels) if lv == key]].mean() for key in keys]), GENERATOR_UNITS
    return scores, RUN_UNITS


def pooled_variance(unit_sets: Sequence[np.ndarray]) -> tuple[float, int] | None:
    """(pooled variance of one unit, its degrees of freedom) over regimes' units: sum of squares about each
    regime's own mean / sum of (units - 1), as an analysis of variance pools its error term. None if no
    regime has two units."""
    df = sum(len(u) - 1 for u in unit_sets if len(u) > 1)
    if df == 0:
        return None
    return float(sum(((u - u.mean()) ** 2).sum() for u in unit_sets if len(u) > 1) / df), df


def _training_variance(scores: np.ndarray, levels: Sequence | None, pool: dict | None
                       ) -> tuple[float | None, int, str]:
    """(variance of the regime's mean over its training units, its degrees of freedom, what it covers).

    ``pool`` maps a unit kind to a pooled (variance of one unit, df) (:func:`pooled_variance`); without
    one for the regime's kind, the regime's own units give it. One unit and no pool: no estimate (None).
    """
    units, covers = training_units(scores, levels)
    if pool and covers in pool and pool[covers] is not None:
        variance, df = pool[covers]
        return variance / len(units), df, covers
    if len(units) < 2:
        return None, 0, covers
    return float(units.var(ddof=1) / len(units)), len(units) - 1, covers


def _t_interval(estimate: float, parts: list[tuple[float, float]], confidence: float) -> dict:
    """Estimate +- t * se, se^2 the sum of the (variance, df) parts; df by Welch-Satterthwaite."""
    variance = sum(v for v, _ in parts)
    if variance <= 0:
        return {"se": 0.0, "df": None, "low": estimate, "high": estimate, "p_value": 1.0 if estimate == 0 else 0.0}
    denominator = sum(v * v / df for v, df in parts if v > 0 and df > 0)
    df = variance * variance / denominator if denominator > 0 else math.inf
    se = math.sqrt(variance)
    t = float(sps.t.ppf((1 + confidence) / 2, df))
    p = float(2 * sps.t.sf(abs(estimate) / se, df))
    return {"se": se, "df": None if math.isinf(df) else float(df), "low": estimate - t * se, "high": estimate + t * se,
            "p_value": min(1.0, p)}


def compare(
    y_true: np.ndarray,
    a: Sequence[np.ndarray],
    b: Sequence[np.ndarray] | None,
    metric: Metric,
    *,
    groups: Sequence | None = None,
    a_levels: Sequence | None = None,
    b_levels: Sequence | None = None,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    pool: dict | None = None,
) -> dict:
    """Regime ``a``'s mean metric over its training runs, and (with ``b``) its difference from regime ``b``'s.

    ``a`` / ``b``: one predicted-label vector per training run, all on the test images ``y_true``;
    ``groups``: the patient of each test image (None: each image its own); ``a_levels`` / ``b_levels``:
    the generator seed of each run (None: one generator, or none). Without ``b`` it is one regime's
    estimate and interval. Returns ``estimate`` (a's mean, or a - b), ``low`` / ``high`` (the t
    interval), ``p_value`` (against no difference; with ``b`` only), ``se``, ``df``, the variance parts
    (``training_a``, ``training_b``, ``test``) and ``covers``: the sources of variance the interval
    counts. A regime with one run has no training variance to count: ``covers`` then lacks it, and the
    interval is the test split's alone. ``pool``: pooled training variances by unit kind
    (:func:`pooled_variance` over every regime of the study, keyed ``RUN_UNITS`` / ``GENERATOR_UNITS``):
    each regime's training variance is then the pooled one over its units, with the pool's degrees of
    freedom, rather than its own 2 or 3 runs' (which can be 0 by chance).
    """
    if not isinstance(metric, Metric):
        raise TypeError("metric must be an augkit.outputs.stats.Metric (metric_fn(name, n_classes))")
    arrays = _labels(y_true, *a, *(b or ()))
    y_true, a_preds, b_preds = arrays[0], arrays[1 : 1 + len(a)], arrays[1 + len(a) :]
    if not a_preds or (b is not None and not b_preds):
        raise ValueError("each regime needs at least one training run")
    _check_confidence(confidence)
    k = metric.classes_for(y_true, *a_preds, *b_preds)
    score = lambda p: metric(y_true, p)  # noqa: E731
    a_scores = np.array([score(p) for p in a_preds])
    b_scores = np.array([score(p) for p in b_preds])
    estimate = float(a_scores.mean() - (b_scores.mean() if b_preds else 0.0))
    # the test split: cluster bootstrap of the run-averaged metric (difference)
    boot = []
    for w in _cluster_weights(groups, len(y_true), n_boot, seed):
        s = _weighted_scores(metric, y_true, [*a_preds, *b_preds], w, k)
        boot.append(s[: len(a_preds)].mean(0) - (s[len(a_preds) :].mean(0) if b_preds else 0.0))
    boot = np.concatenate(boot)
    n_clusters = len(set(groups)) if groups is not None else len(y_true)
    test_var = float(boot.var(ddof=1)) if len(boot) > 1 else 0.0
    parts = [(test_var, max(n_clusters - 1, 1))]
    out: dict = {"estimate": estimate, "test": test_var}
    covers = [f"test patients ({n_clusters})" if groups is not None else f"test images ({n_clusters})"]
    pooled: dict[str, list] = {}  # unit kind -> [variance, df]: one estimate, however many regimes use it
    for name, run_scores, levels in (("a", a_scores, a_levels), ("b", b_scores, b_levels)):
        if name == "b" and not b_preds:
            continue
        variance, df, what = _training_variance(run_scores, levels, pool)
        if variance is not None:
            # the runs' scores also differ by which test images each happens to get wrong, a part the test
            # bootstrap counts again (it resamples the run-averaged predictions): counted twice, which keeps
            # the test on the safe side (docs/evaluation.md: removing it made the test too liberal)
            if pool and pool.get(what) is not None:
                pooled.setdefault(what, [0.0, df])[0] += variance
            else:
                parts.append((variance, df))
            covers.append(what)
        out[f"training_{name}"] = variance
    parts += [(v, df) for v, df in pooled.values()]
    out.update(_t_interval(estimate, parts, confidence))
    bound = 0.0 if not b_preds else -1.0  # a metric lies in [0, 1], a difference of two in [-1, 1]
    out["low"], out["high"] = max(out["low"], bound), min(out["high"], 1.0)
    if not b_preds:
        out.pop("p_value")
    out["covers"] = sorted(set(covers), key=covers.index)
    return out


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None): step-down, monotone, capped at 1."""
    index = [i for i, p in enumerate(p_values) if p is not None]
    order = sorted(index, key=lambda i: p_values[i])
    m, running = len(order), 0.0
    adjusted: list[float | None] = [None] * len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted
