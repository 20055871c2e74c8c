"""The embedded phantom data sets: options, determinism, patients, class signal, registration."""

from __future__ import annotations

import numpy as np
import pluggy
import pytest
from pydantic import ValidationError

import augkit
import augkit.extension.hookspecs
import augkit_plugins.phantoms
from augkit_plugins.phantoms import BrainPhantom, ChestPhantom

SMALL = {
    ChestPhantom: {"normal": 5, "bacteria": 4, "virus": 3},
    BrainPhantom: {"tumor": 4, "no_tumor": 5},
}
SOURCES = pytest.mark.parametrize("cls", [ChestPhantom, BrainPhantom], ids=["chest", "brain"])


def small(cls, **options):
    return cls(**{"counts": SMALL[cls], "image_size": 48, **options})


def load_all(source) -> list[np.ndarray]:
    return [s.load() for s in source.samples()]


def test_defaults_and_class_order():
    chest, brain = ChestPhantom(), BrainPhantom()
    assert chest.classes == ["normal", "bacteria", "virus"]
    assert chest.options.counts == {"normal": 120, "bacteria": 120, "virus": 30}
    assert brain.classes == ["tumor", "no_tumor"]
    assert brain.options.counts == {"tumor": 100, "no_tumor": 100}
    assert isinstance(chest, augkit.DataSource)
    assert chest.options.image_size == 112


def test_unknown_class_name_lists_the_allowed_names():
    with pytest.raises(ValidationError, match=r"normal.*bacteria.*virus.*covid"):
        ChestPhantom(counts={"normal": 1, "bacteria": 1, "covid": 1})
    with pytest.raises(ValidationError, match="missing"):
        BrainPhantom(counts={"tumor": 3})


@pytest.mark.parametrize(
    "options",
    [
        {"image_size": 16},
        {"image_size": 2048},
        {"noise": -0.1},
        {"difficulty": 1.5},
        {"images_per_patient": 0},
        {"counts": {"tumor": 0, "no_tumor": 2}},
        {"colour": True},
    ],
)
def test_bad_options_are_rejected(options):
    with pytest.raises(ValidationError):
        BrainPhantom(**options)


def test_counts_are_put_in_class_order():
    source = BrainPhantom(counts={"no_tumor": 2, "tumor": 3})
    assert list(source.options.counts) == ["tumor", "no_tumor"]
    assert [s.label for s in source.samples()] == [0, 0, 0, 1, 1]


@SOURCES
def test_counts_per_class_are_exact(cls):
    labels = [s.label for s in small(cls).samples()]
    counts = np.bincount(labels, minlength=len(SMALL[cls]))
    assert counts.tolist() == list(SMALL[cls].values())


@SOURCES
def test_images_are_square_uint8_with_content(cls):
    for image in load_all(small(cls, image_size=40)):
        assert image.shape == (40, 40) and image.dtype == np.uint8
        assert image.std() > 20 and image.max() - image.min() > 100


@SOURCES
def test_same_seed_same_bytes_other_seed_other_images(cls):
    a, b = load_all(small(cls, seed=3)), load_all(small(cls, seed=3))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = load_all(small(cls, seed=4))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))


@SOURCES
def test_loading_is_lazy_and_independent_of_order(cls):
    source = small(cls, seed=1)
    samples = list(source.samples())  # nothing is rendered yet
    forwards = {s.key: s.load() for s in samples}
    backwards = {s.key: s.load() for s in reversed(samples)}
    assert all(np.array_equal(forwards[k], backwards[k]) for k in forwards)
    # one class's count does not change the other classes' images
    more = dict(SMALL[cls])
    more[source.classes[0]] += 3
    grown = {s.key: s for s in cls(counts=more, image_size=48, seed=1).samples()}
    assert all(np.array_equal(forwards[k], grown[k].load()) for k in forwards)


@SOURCES
def test_keys_are_stable_and_unique(cls):
    keys = [s.key for s in small(cls).samples()]
    assert len(set(keys)) == len(keys)
    assert keys[0] == f"{cls.name}/{cls().classes[0]}/00000"


@SOURCES
@pytest.mark.parametrize("per_patient", [1, 2, 3])
def test_patients_group_consecutive_images_of_one_class(cls, per_patient):
    samples = list(small(cls, images_per_patient=per_patient).samples())
    labels_of: dict[str, set[int]] = {}
    images_of: dict[str, int] = {}
    for s in samples:
        assert s.group.startswith("p") and len(s.group) == 5
        labels_of.setdefault(s.group, set()).add(s.label)
        images_of[s.group] = images_of.get(s.group, 0) + 1
    assert all(len(labels) == 1 for labels in labels_of.values())  # never shared across classes
    assert max(images_of.values()) == per_patient
    for label, n in enumerate(SMALL[cls].values()):
        groups = [s.group for s in samples if s.label == label]
        assert groups[:per_patient] == [groups[0]] * min(per_patient, n)
        assert len(set(groups)) == -(-n // per_patient)


def test_chest_lungs_are_brighter_with_pneumonia():
    source = ChestPhantom(counts={"normal": 16, "bacteria": 16, "virus": 16}, image_size=64, difficulty=0.2, noise=0.0)
    lungs = np.s_[20:44, 10:26], np.s_[20:44, 38:54]  # mid zones of both lungs
    by_class: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for s in source.samples():
        image = s.load().astype(float)
        by_class[s.label].append(np.mean([image[zone].mean() for zone in lungs]))
    normal, bacteria, virus = (np.mean(v) for v in by_class.values())
    assert bacteria > normal + 5
    assert virus > normal + 2


def test_brain_tumour_is_brighter_than_white_matter():
    # an enhancing rim or a solid mass outshines white matter; the scalp lies outside the disc
    source = BrainPhantom(counts={"tumor": 16, "no_tumor": 16}, image_size=64, difficulty=0.2, noise=0.0)
    yy, xx = np.mgrid[:64, :64]
    centre = np.hypot(yy - 31.5, xx - 31.5) < 0.45 * 32
    brightest: dict[int, list[float]] = {0: [], 1: []}
    for s in source.samples():
        brightest[s.label].append(np.percentile(s.load()[centre], 99.5))
    assert np.mean(brightest[0]) > np.mean(brightest[1]) + 15


def test_fingerprint_follows_options():
    assert ChestPhantom().fingerprint() == ChestPhantom().fingerprint()
    assert ChestPhantom(seed=1).fingerprint() != ChestPhantom().fingerprint()
    assert "chest-phantom" in ChestPhantom().fingerprint()


def test_registered_through_the_hook():
    pm = pluggy.PluginManager("augkit")
    pm.add_hookspecs(augkit.extension.hookspecs)
    pm.register(augkit_plugins.phantoms)
    pm.check_pending()
    registered: dict[str, type] = {}
    pm.hook.register_datasets(register=registered.__setitem__)
    assert registered == {"chest-phantom": ChestPhantom, "brain-phantom": BrainPhantom}
