import numpy as np
import pytest
from scipy import stats as sps

from augkit.outputs.metrics import from_confusion
from augkit.outputs.stats import Metric, bootstrap_seeds, mean_ci, metric_fn, roc_auc_ovr

sklearn = pytest.importorskip("sklearn.metrics")


accuracy = metric_fn("accuracy")


def bootstrap_ci(y_true, y_pred, metric, **kwargs):
    """The bootstrap interval of one model: ``bootstrap_seeds`` with a single seed."""
    return bootstrap_seeds(y_true, [y_pred], metric, **kwargs)


def paired(y_true, pred_a, pred_b, metric, **kwargs):
    """metric(b) - metric(a) on the same resampled images: ``bootstrap_seeds`` of b against the reference a."""
    return bootstrap_seeds(y_true, [pred_b], metric, reference=[pred_a], **kwargs)


def noisy(rng, y, k, p_right):
    """Predictions that are right with probability ``p_right``, else a random class."""
    return np.where(rng.random(len(y)) < p_right, y, rng.integers(0, k, len(y)))


# --- roc_auc_ovr ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_auc_matches_scikit_learn_three_classes_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, 80)
    y[:3] = [0, 1, 2]
    # tenths that sum to 1 (scikit-learn insists): many tied scores; seed > 0 adds signal
    alpha = np.ones((80, 3)) + 2 * seed * np.eye(3)[y]
    proba = np.stack([rng.multinomial(10, rng.dirichlet(a)) for a in alpha]) / 10
    ours = roc_auc_ovr(y, proba)
    theirs = sklearn.roc_auc_score(y, proba, multi_class="ovr", average=None)
    np.testing.assert_allclose(ours["per_class"], theirs)
    assert ours["macro"] == pytest.approx(sklearn.roc_auc_score(y, proba, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("seed", range(3))
def test_auc_two_classes_matches_binary_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 50)
    p1 = (rng.random(50) * 0.6 + 0.4 * y).round(1)
    proba = np.stack([1 - p1, p1], 1)
    ours = roc_auc_ovr(y, proba)
    for k in range(2):
        assert ours["per_class"][k] == pytest.approx(sklearn.roc_auc_score(y == k, proba[:, k]))
    assert ours["per_class"][0] == pytest.approx(ours["per_class"][1])


def test_auc_perfect_random_and_all_tied():
    y = np.array([0, 0, 1, 1])
    assert roc_auc_ovr(y, np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]]))["macro"] == 1.0
    assert roc_auc_ovr(y, np.full((4, 2), 0.5))["per_class"] == [0.5, 0.5]


def test_auc_absent_class_is_none_and_left_out_of_macro():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)  # class 2 never occurs
    proba = rng.dirichlet(np.ones(3), 40)
    out = roc_auc_ovr(y, proba)
    assert out["per_class"][2] is None
    assert out["macro"] == pytest.approx(np.mean(out["per_class"][:2]))
    assert roc_auc_ovr(np.zeros(5, int), proba[:5, :1]) == {"macro": None, "per_class": [None]}


def test_auc_rejects_bad_input():
    with pytest.raises(ValueError):
        roc_auc_ovr(np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]))
    with pytest.raises(ValueError):
        roc_auc_ovr(np.array([0, 2]), np.full((2, 2), 0.5))


# --- mean_ci -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[0.8, 0.82, 0.79], [0.9, 0.91, 0.85, 0.88, 0.93], [0.5, 0.7]])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_mean_ci_matches_scipy_t_interval(values, confidence):
    out = mean_ci(values, confidence)
    low, high = sps.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert (out["low"], out["high"]) == (pytest.approx(low), pytest.approx(high))
    assert out["n"] == len(values) and out["std"] == pytest.approx(np.std(values, ddof=1))


def test_mean_ci_one_seed_has_no_interval_and_nan_is_refused():
    assert mean_ci([0.8]) == {"mean": 0.8, "low": None, "high": None, "n": 1, "std": None}
    flat = mean_ci([0.7, 0.7, 0.7])
    assert flat["low"] == pytest.approx(0.7) and flat["high"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="NaN"):
        mean_ci([0.8, float("nan")])
    with pytest.raises(ValueError):
        mean_ci([])


# --- metrics for the bootstrap -------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_macro_f1_never_exceeds_mean_of_precision_and_recall(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    cm = rng.integers(0, 20, (k, k)) * (rng.random((k, k)) < 0.7)  # some empty rows/columns
    m = from_confusion(cm)
    assert m["f1"] <= (m["precision"] + m["recall"]) / 2 + 1e-12


@pytest.mark.parametrize("name", ["accuracy", "balanced_accuracy", "precision", "recall", "f1"])
def test_vectorised_metric_agrees_with_from_confusion(name):
    rng = np.random.default_rng(1)
    cms = rng.integers(0, 15, (30, 4, 4)) * (rng.random((30, 4, 4)) < 0.6)
    batch = metric_fn(name, 4).from_confusions(cms)
    np.testing.assert_allclose(batch, [from_confusion(cm)[name] for cm in cms])


def test_metric_fn():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 100)
    pred = noisy(rng, y, 3, 0.7)
    assert accuracy(y, pred) == pytest.approx(sklearn.accuracy_score(y, pred))
    assert metric_fn("f1", 3)(y, pred) == pytest.approx(sklearn.f1_score(y, pred, average="macro"))
    with pytest.raises(ValueError, match="n_classes"):
        metric_fn("f1")
    with pytest.raises(ValueError, match="unknown"):
        metric_fn("auc", 3)


# --- bootstrap_ci --------------------------------------------------------------------------


def test_bootstrap_ci_contains_estimate_narrows_with_data_and_is_deterministic():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 2000)
    pred = noisy(rng, y, 3, 0.7)
    small = bootstrap_ci(y[:100], pred[:100], accuracy, n_boot=500)
    large = bootstrap_ci(y, pred, accuracy, n_boot=500)
    for out in (small, large):
        assert out["low"] <= out["estimate"] <= out["high"]
    assert large["high"] - large["low"] < (small["high"] - small["low"]) / 2
    assert bootstrap_ci(y, pred, accuracy, n_boot=200, seed=7) == bootstrap_ci(y, pred, accuracy, n_boot=200, seed=7)
    assert bootstrap_ci(y, pred, accuracy, n_boot=200, seed=7) != bootstrap_ci(y, pred, accuracy, n_boot=200, seed=8)


@pytest.mark.parametrize("name", ["accuracy", "f1"])
def test_vectorised_bootstrap_equals_plain_callable(name):
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 60)
    pred = noisy(rng, y, 4, 0.6)
    metric = metric_fn(name, 4)
    fast = bootstrap_ci(y, pred, metric, n_boot=100, seed=1)
    slow = bootstrap_ci(y, pred, lambda t, p: metric(t, p), n_boot=100, seed=1)
    assert fast == pytest.approx(slow)


def test_bootstrap_chunks_give_the_same_answer_for_large_test_sets(monkeypatch):
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 300)
    pred = noisy(rng, y, 2, 0.8)
    whole = bootstrap_ci(y, pred, metric_fn("f1", 2), n_boot=50)
    monkeypatch.setattr("augkit.outputs.stats._CHUNK", 300 * 7)  # 7 resamples per chunk
    chunked = bootstrap_ci(y, pred, metric_fn("f1", 2), n_boot=50)
    assert chunked["estimate"] == whole["estimate"]
    assert chunked["low"] == pytest.approx(whole["low"], abs=0.05)


# --- bootstrap_seeds, paired with a reference -------------------------------------------------


def test_paired_bootstrap_detects_a_clearly_better_model():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    wrong = 1 - y
    pred_a = np.where(rng.random(300) < 0.6, y, wrong)
    pred_b = np.where(rng.random(300) < 0.9, y, wrong)
    out = paired(y, pred_a, pred_b, accuracy)
    assert out["difference"] == pytest.approx(accuracy(y, pred_b) - accuracy(y, pred_a))
    assert 0 < out["diff_low"] <= out["difference"] <= out["diff_high"]
    assert out["p_value"] < 0.05
    assert out["p_value"] == pytest.approx(2 / 1001)  # no resample reverses it: the +1 floor
    reverse = paired(y, pred_b, pred_a, accuracy)
    assert reverse["difference"] == -out["difference"] and reverse["p_value"] == out["p_value"]


def test_paired_bootstrap_identical_predictions():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, 200)
    pred = noisy(rng, y, 3, 0.7)
    out = paired(y, pred, pred.copy(), metric_fn("f1", 3), n_boot=200)
    assert {k: out[k] for k in ("difference", "diff_low", "diff_high", "p_value")} == {
        "difference": 0.0, "diff_low": 0.0, "diff_high": 0.0, "p_value": 1.0}


def test_paired_bootstrap_similar_models_not_significant():
    rng = np.random.default_rng(9)
    y = rng.integers(0, 2, 300)
    out = paired(y, noisy(rng, y, 2, 0.7), noisy(rng, y, 2, 0.7), accuracy)
    assert out["diff_low"] < 0 < out["diff_high"] and out["p_value"] > 0.05


def test_labels_are_checked():
    with pytest.raises(ValueError):
        paired(np.array([0, 1]), np.array([0]), np.array([0, 1]), accuracy)
    with pytest.raises(ValueError):
        bootstrap_ci(np.array([], int), np.array([], int), accuracy)
    with pytest.raises(ValueError, match="out of range"):
        metric_fn("f1", 2)(np.array([0, 2]), np.array([0, 1]))
    assert isinstance(metric_fn("accuracy"), Metric)


def test_bootstrap_seeds_compares_seed_means():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 200)
    a = np.where(rng.random(200) < 0.6, y, rng.integers(0, 3, 200))
    b = np.where(rng.random(200) < 0.8, y, rng.integers(0, 3, 200))
    f1 = metric_fn("f1", 3)
    one = bootstrap_seeds(y, [b], f1, reference=[a], seed=1)
    assert one["difference"] == pytest.approx(f1(y, b) - f1(y, a))
    assert one["low"] <= one["estimate"] <= one["high"]
    three = bootstrap_seeds(y, [b, b, a], f1, reference=[a, a, a], seed=1)
    assert three["difference"] == pytest.approx(2 / 3 * one["difference"])


def test_mean_ci_is_clipped_to_the_metric_range():
    from augkit.outputs.stats import mean_ci

    ci = mean_ci([0.7, 0.9], bounds=(0.0, 1.0))
    assert ci["high"] == 1.0 and ci["low"] >= 0.0
    assert mean_ci([0.7, 0.9])["high"] > 1.0  # unbounded, the t interval would claim more than 100 %


# --- compare: training runs and test patients ------------------------------------------------------------------------

from augkit.outputs.stats import compare, holm  # noqa: E402


def _runs(rng, y, accuracies):
    """One prediction vector per run, each right on about that share of the images."""
    out = []
    for acc in accuracies:
        right = rng.random(len(y)) < acc
        out.append(np.where(right, y, (y + 1) % 3))
    return out


def test_compare_counts_training_variance_that_the_test_bootstrap_alone_misses():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    a, b = _runs(rng, y, [0.70, 0.80, 0.90]), _runs(rng, y, [0.72, 0.82, 0.92])
    acc = metric_fn("accuracy", 3)
    c = compare(y, a, b, acc, seed=1)
    old = bootstrap_seeds(y, a, acc, reference=b, seed=1)
    assert c["estimate"] == pytest.approx(old["difference"])
    assert c["training_a"] > c["test"] and c["training_b"] > c["test"]  # 10-point spread between runs
    assert c["high"] - c["low"] > 3 * (old["diff_high"] - old["diff_low"])
    assert c["p_value"] > 0.3 and old["p_value"] < 0.05  # the old test called this noise significant
    assert c["covers"] == ["test images (600)", "classifier seeds"]


def test_compare_with_one_run_says_it_does_not_cover_training_variance():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    c = compare(y, _runs(rng, y, [0.9]), _runs(rng, y, [0.6]), metric_fn("f1", 3))
    assert c["training_a"] is None and c["covers"] == ["test images (300)"]
    assert c["p_value"] < 0.01 and c["low"] > 0.2


def test_compare_resamples_patients_not_images():
    """Ten images per patient, all right or all wrong together: the patient bootstrap is wider."""
    rng = np.random.default_rng(2)
    groups = np.repeat(np.arange(40), 10)
    y = rng.integers(0, 3, 40)[groups]
    right = (rng.random(40) < 0.75)[groups]
    pred = np.where(right, y, (y + 1) % 3)
    acc = metric_fn("accuracy", 3)
    by_patient = compare(y, [pred], None, acc, groups=groups.astype(str))
    by_image = compare(y, [pred], None, acc)
    assert by_patient["high"] - by_patient["low"] > 2 * (by_image["high"] - by_image["low"])
    assert by_patient["covers"] == ["test patients (40)"] and "p_value" not in by_patient


def test_compare_with_generator_seeds_takes_the_generator_as_the_unit():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 400)
    # two generators, one good one bad; three classifier seeds each, close together
    a = _runs(rng, y, [0.9, 0.91, 0.9, 0.6, 0.61, 0.6])
    b = _runs(rng, y, [0.75, 0.76, 0.75])
    acc = metric_fn("accuracy", 3)
    levels = [0, 0, 0, 1, 1, 1]
    by_generator = compare(y, a, b, acc, a_levels=levels)
    assert "generator and classifier seeds" in by_generator["covers"]
    assert by_generator["training_a"] == pytest.approx(np.var([np.mean([acc(y, p) for p in a[:3]]),
                                                               np.mean([acc(y, p) for p in a[3:]])], ddof=1) / 2)
    assert by_generator["df"] < 3  # one degree of freedom from two generators dominates


def test_compare_is_reproducible_and_rejects_bad_input():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 100)
    a, b = _runs(rng, y, [0.8, 0.7]), _runs(rng, y, [0.6, 0.7])
    f1 = metric_fn("f1", 3)
    assert compare(y, a, b, f1, seed=5) == compare(y, a, b, f1, seed=5)
    with pytest.raises(ValueError, match="groups"):
        compare(y, a, b, f1, groups=["p"] * 99)
    with pytest.raises(TypeError, match="Metric"):
        compare(y, a, b, lambda t, p: 0.0)


def test_holm_adjusts_step_down_and_keeps_none():
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([0.2, 0.9]) == [0.4, 0.9]
    assert holm([]) == []
