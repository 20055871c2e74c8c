import functools

import numpy as np
import pytest
import torch

import augkit
from augkit.stages.data import DataError, anonymise_group, load_and_preprocess
from augkit.stages.splits import split_by_patient, split_keeping_source_test


def patients(n_patients=60, per_patient=3, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for p in range(n_patients):
        label = int(rng.integers(n_classes)) if p >= n_classes else p
        k = int(rng.integers(1, per_patient + 1))
        labels += [label] * k
        groups += [f"patient{p}"] * k
    return labels, groups


@pytest.mark.parametrize("seed", range(3))
def test_split_never_shares_a_patient_and_covers_everything(seed):
    labels, groups = patients(seed=seed)
    s = split_by_patient(labels, groups, val=0.15, test=0.2, seed=seed)
    parts = [set(np.asarray(groups)[ix]) for ix in (s.train, s.val, s.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sorted(np.concatenate([s.train, s.val, s.test]).tolist()) == list(range(len(labels)))


def test_split_is_stratified_and_deterministic():
    labels, groups = patients(n_patients=300)
    a = split_by_patient(labels, groups, val=0.15, test=0.2, seed=1)
    b = split_by_patient(labels, groups, val=0.15, test=0.2, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip((a.train, a.val, a.test), (b.train, b.val, b.test)))
    labels = np.asarray(labels)
    overall = np.bincount(labels) / len(labels)
    for ix, frac in ((a.train, 0.65), (a.val, 0.15), (a.test, 0.2)):
        assert len(ix) / len(labels) == pytest.approx(frac, abs=0.03)
        assert np.bincount(labels[ix], minlength=3) / len(ix) == pytest.approx(overall, abs=0.04)


def test_split_too_few_patients_is_a_clear_error():
    with pytest.raises(DataError, match="the val split is empty: 2 patients are too few"):
        split_by_patient([0, 1], ["a", "b"], val=0.2, test=0.2, seed=0)


def test_keeping_the_source_test_split():
    labels, groups = patients(n_patients=90)
    sources = [("test" if int(g[7:]) % 5 == 0 else "train") for g in groups]  # whole patients
    s = split_keeping_source_test(labels, groups, sources, val=0.2, seed=0)
    assert sorted(s.test.tolist()) == [i for i, src in enumerate(sources) if src == "test"]
    parts = [set(np.asarray(groups)[ix]) for ix in (s.train, s.val, s.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert len(s.val) / (len(s.train) + len(s.val)) == pytest.approx(0.2, abs=0.05)
    with pytest.raises(DataError, match="split.mode: source needs a dataset that records its own test split"):
        split_keeping_source_test(labels, groups, [None] * len(labels), val=0.2, seed=0)


def test_groups_are_stored_only_as_hashes():
    assert anonymise_group("PAT-123") != "PAT-123"
    assert anonymise_group("PAT-123") == anonymise_group("PAT-123")
    assert "PAT" not in anonymise_group("PAT-123")


def _broken():
    raise OSError("truncated file")


class ListSource(augkit.DataSource):
    class Options(augkit.DataSource.Options):
        n: int = 6

    classes = ["a", "b"]

    def samples(self):
        for i in range(self.options.n):
            if i == 3:
                yield augkit.Sample(load=_broken, label=1, group="pX", key="bad.jpeg")
            else:
                load = functools.partial(np.full, (8, 8), i % 256, np.uint8)
                yield augkit.Sample(load=load, label=i % 2, group=f"p{i}", key=f"img{i}")


class Scale(augkit.Preprocessor):
    calls = 0

    def __call__(self, image):
        Scale.calls += 1
        return np.broadcast_to(image.astype(np.float32)[None, :4, :4] / 127.5 - 1, (1, 4, 4))


def test_bad_image_is_skipped_and_named_then_cache_reused(tmp_path):
    kw = dict(source_name="list", prep_name="scale", cache_dir=tmp_path)
    first = load_and_preprocess(ListSource(), Scale(), **kw)
    assert len(first.data) == 5 and first.skipped == [("bad.jpeg", "OSError: truncated file")]
    calls = Scale.calls
    second = load_and_preprocess(ListSource(), Scale(), **kw)
    assert second.cache_hit and Scale.calls == calls  # nothing preprocessed again
    assert torch.equal(first.data.images, second.data.images) and second.skipped == first.skipped
    third = load_and_preprocess(ListSource(n=5), Scale(), **kw)  # other data: other cache entry
    assert not third.cache_hit


def _image(i, blank):
    image = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    return np.zeros_like(image) if blank else image + i


class BlankSource(ListSource):
    class Options(ListSource.Options):
        blank: list[int] = [1, 4]

    def samples(self):
        for i in range(self.options.n):
            load = functools.partial(_image, i, i in self.options.blank)
            yield augkit.Sample(load=load, label=i % 2, group=f"p{i}", key=f"img{i}")


def test_blank_images_are_kept_and_named_in_one_warning_also_from_the_cache(tmp_path):
    """An all-black scan (a failed acquisition or export) was kept without a word: it is kept, as the data gives
    it, and named by its key, also when the data comes from the cache."""
    from augkit.stages.data import blank_note

    kw = dict(source_name="blank", prep_name="scale", cache_dir=tmp_path)
    first = load_and_preprocess(BlankSource(), Scale(), **kw)
    assert len(first.data) == 6 and first.blank == ["img1", "img4"]
    note = blank_note(first)
    assert note.startswith("2 images are blank after preprocessing (one value in every pixel): img1, img4; kept")
    second = load_and_preprocess(BlankSource(), Scale(), **kw)
    assert second.cache_hit and second.blank == first.blank
    assert blank_note(load_and_preprocess(ListSource(n=2), Scale(), source_name="l", prep_name="s",
                                          cache_dir=None)) is not None  # np.full images are blank too
    varied = load_and_preprocess(BlankSource(blank=[]), Scale(), source_name="b", prep_name="s", cache_dir=None)
    assert varied.blank == [] and blank_note(varied) is None


@pytest.mark.parametrize("damage", [lambda b: b"", lambda b: b[: len(b) // 2], lambda b: b"not a torch file"])
def test_a_damaged_cache_file_is_made_again_not_fatal(tmp_path, caplog, damage):
    """An emptied or cut-short cache file (a full disk, a copy gone wrong) stopped every command ("Aborted."):
    it is augkit's own file, so it is read as a miss, the data preprocessed again and the file rewritten."""
    kw = dict(source_name="list", prep_name="scale", cache_dir=tmp_path)
    first = load_and_preprocess(ListSource(), Scale(), **kw)
    first.cache_path.write_bytes(damage(first.cache_path.read_bytes()))
    with caplog.at_level("WARNING", logger="augkit"):
        again = load_and_preprocess(ListSource(), Scale(), **kw)
    assert not again.cache_hit and torch.equal(again.data.images, first.data.images)
    assert "cannot be read" in caplog.text and "preprocessing again" in caplog.text
    assert load_and_preprocess(ListSource(), Scale(), **kw).cache_hit  # written anew


def test_a_cache_dir_that_cannot_be_made_is_named_before_any_work(tmp_path):
    blocked = tmp_path / "afile"
    blocked.write_text("user data")
    calls = Scale.calls
    with pytest.raises(DataError, match=r"cache_dir .*afile.*cannot create this folder .*set cache_dir"):
        load_and_preprocess(ListSource(), Scale(), source_name="l", prep_name="s", cache_dir=blocked)
    assert Scale.calls == calls and blocked.read_text() == "user data"


def test_strict_mode_stops_at_the_first_bad_image(tmp_path):
    with pytest.raises(DataError, match="bad.jpeg: OSError: truncated file"):
        load_and_preprocess(ListSource(), Scale(), source_name="l", prep_name="s", cache_dir=None, strict=True)


def test_strict_mode_stops_also_when_a_lenient_run_filled_the_cache(tmp_path):
    """`augkit data` (lenient) before a strict run: the cache hit returned the skipped list and strict said nothing."""
    kw = dict(source_name="l", prep_name="s", cache_dir=tmp_path)
    assert load_and_preprocess(ListSource(), Scale(), **kw).skipped  # lenient: skipped, cached
    with pytest.raises(DataError, match=r"bad.jpeg: OSError: truncated file \(strict mode stops"):
        load_and_preprocess(ListSource(), Scale(), strict=True, **kw)
    assert load_and_preprocess(ListSource(), Scale(), **kw).cache_hit  # the cache is kept


def test_no_usable_image_is_a_clear_error():
    class Empty(ListSource):
        def samples(self):
            return iter(())

    with pytest.raises(DataError, match="no usable images"):
        load_and_preprocess(Empty(), Scale(), source_name="l", prep_name="s", cache_dir=None)


def test_parallel_preprocessing_equals_serial(tmp_path):
    source = ListSource(n=80)
    serial = load_and_preprocess(source, Scale(), source_name="l", prep_name="s", cache_dir=None, workers=1)
    parallel = load_and_preprocess(source, Scale(), source_name="l", prep_name="s", cache_dir=None, workers=2)
    assert torch.equal(serial.data.images, parallel.data.images) and serial.skipped == parallel.skipped
    assert serial.data.groups == parallel.data.groups
