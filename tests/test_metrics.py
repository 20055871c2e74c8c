import numpy as np
import pytest

from augkit.outputs.metrics import confusion_matrix, from_confusion

sklearn = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.6, y_true, rng.integers(0, 3, 60))
    if seed == 4:
        y_pred[y_pred == 2] = 0  # a class never predicted: precision 0, as scikit-learn's zero_division=0
    cm = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, sklearn.confusion_matrix(y_true, y_pred, labels=[0, 1, 2]))
    m = from_confusion(cm)
    assert m["accuracy"] == pytest.approx(sklearn.accuracy_score(y_true, y_pred))
    assert m["balanced_accuracy"] == pytest.approx(sklearn.balanced_accuracy_score(y_true, y_pred))
    for ours, theirs in [("precision", sklearn.precision_score), ("recall", sklearn.recall_score), ("f1", sklearn.f1_score)]:
        assert m[ours] == pytest.approx(theirs(y_true, y_pred, average="macro", zero_division=0))
    assert m["f1"] <= (m["precision"] + m["recall"]) / 2 + 1e-12


def test_per_class_and_support():
    m = from_confusion(np.array([[3, 1], [0, 4]]), ["no", "yes"])
    assert m["per_class"]["no"] == {"precision": 1.0, "recall": 0.75, "f1": pytest.approx(6 / 7), "support": 4}
    assert m["confusion_matrix"] == [[3, 1], [0, 4]]


def test_scores_of_a_stack_are_from_confusion_of_each_matrix():
    from augkit.outputs.metrics import SCORES, scores

    rng = np.random.default_rng(0)
    cms = rng.integers(0, 9, (2, 5, 3, 3)) * (rng.random((2, 5, 3, 3)) < 0.7)  # some empty rows and columns
    stacked = scores(cms)
    for name in SCORES:
        assert stacked[name].shape == (2, 5)
        assert stacked[name].tolist() == [[from_confusion(cm)[name] for cm in row] for row in cms]
