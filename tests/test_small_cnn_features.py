import torch

import augkit


def _classes_by_brightness(n: int, seed: int) -> augkit.LabeledImages:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    images = (0.3 * torch.randn(n, 1, 32, 32, generator=g) + (labels.float() - 1)[:, None, None, None] * 0.5).clamp(-1, 1)
    return augkit.LabeledImages(images, labels, ["a", "b", "c"])


def test_small_cnn_learns_a_space_that_tells_the_classes_apart():
    train, val, test = (_classes_by_brightness(60, s) for s in (0, 1, 2))
    extractor = augkit.build("feature_extractor", "small-cnn", steps=150)
    rows = list(extractor.fit(train, val, seed=0))
    assert rows[-1]["val_balanced_accuracy"] > 0.9
    features = extractor.features(test.images)
    assert features.shape[0] == 60 and features.dtype == torch.float32 and torch.isfinite(features).all()
    probs = extractor.predict_proba(test.images)
    assert torch.allclose(probs.sum(1), torch.ones(60), atol=1e-5)
    assert (probs.argmax(1) == test.labels).float().mean() > 0.9
    assert "60 real training images" in extractor.describe()


def test_small_cnn_same_seed_same_features():
    train, val = _classes_by_brightness(30, 0), _classes_by_brightness(30, 1)
    out = []
    for _ in range(2):
        extractor = augkit.build("feature_extractor", "small-cnn", steps=20)
        list(extractor.fit(train, val, seed=3))
        out.append(extractor.features(val.images))
    assert torch.equal(*out)
