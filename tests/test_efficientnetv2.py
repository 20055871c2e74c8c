import pytest
import torch
from pydantic import ValidationError

from augkit_plugins.efficientnetv2 import EfficientNetV2


def test_fit_predict_and_early_stopping(tiny_images):
    clf = EfficientNetV2(variant="test_efficientnet", epochs=6, patience=1, min_epochs=2, batch_size=8)
    rows = list(clf.fit(tiny_images, tiny_images.subset(range(6)), seed=0))
    assert 2 <= len(rows) <= 6 and all(set(r) >= {"train_loss", "val_loss", "val_acc"} for r in rows)
    probs = clf.predict_proba(tiny_images.images[:5])
    assert probs.shape == (5, 3) and torch.allclose(probs.sum(1), torch.ones(5), atol=1e-5)


def test_same_seed_same_predictions(tiny_images):
    out = []
    for _ in range(2):
        clf = EfficientNetV2(variant="test_efficientnet", epochs=1, batch_size=8)
        list(clf.fit(tiny_images, tiny_images, seed=4))
        out.append(clf.predict_proba(tiny_images.images))
    assert torch.equal(*out)


def test_default_is_the_paper_b0_from_scratch():
    o = EfficientNetV2.Options()
    assert o.variant == "tf_efficientnetv2_b0" and o.weights is None


def test_local_weights_are_loaded(tiny_images, tmp_path):
    source = EfficientNetV2(variant="test_efficientnet", epochs=1, batch_size=8)
    list(source.fit(tiny_images, tiny_images, seed=0))
    torch.save(source.model.state_dict(), tmp_path / "w.pth")
    clf = EfficientNetV2(variant="test_efficientnet", weights=tmp_path / "w.pth")
    model = clf._create(3)
    assert torch.equal(model.conv_stem.weight, source.model.conv_stem.weight)


@pytest.mark.parametrize(
    "bad, message",
    [({"variant": "efficientnet_v9"}, "unknown timm model"), ({"weights": "/nope.pth"}, "does not exist")],
)
def test_bad_options(bad, message):
    with pytest.raises(ValidationError, match=message):
        EfficientNetV2.Options(**bad)


def test_min_epochs_gives_way_to_short_runs_but_not_to_contradictions():
    assert EfficientNetV2.Options(epochs=3).min_epochs == 3
    assert EfficientNetV2.Options().min_epochs == 10
    with pytest.raises(ValidationError, match=r"min_epochs \(5\) is more than epochs \(3\)"):
        EfficientNetV2.Options(epochs=3, min_epochs=5)


def test_class_weighting_changes_training_on_imbalanced_data(tiny_images):
    skewed = tiny_images.subset([i for i in range(24) if i % 3 != 2 or i < 6])
    out = []
    for weighting in (False, True):
        clf = EfficientNetV2(variant="test_efficientnet", epochs=1, batch_size=8, class_weighting=weighting)
        out.append(next(iter(clf.fit(skewed, skewed, seed=0)))["train_loss"])
    assert out[0] != out[1]
