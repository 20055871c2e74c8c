"""Collapse is seen: a generator of one image per class is flagged by the audit and never kept by selection."""

from __future__ import annotations

import pytest
import torch

import augkit
from augkit import audit as A
from augkit.audit import diversity as D
from augkit.outputs.run_folder import RunFolder
from augkit.stages import generator as G
from augkit.stages.selection import Scorer, rank, train_judge, warnings_for
from test_audit import auditor, phantoms, real  # noqa: F401  (fixtures)


class Replay(augkit.Generator):
    """Samples real images the generator never trained on: of the requested class, at random (``collapsed``
    false), or always the first one (true: one image per class); ``copying``: its training images instead."""

    pool: augkit.LabeledImages
    train: augkit.LabeledImages

    def __init__(self, options=None, **kwargs):
        super().__init__(options, **kwargs)
        self.collapsed = self.copying = self.diverged = False

    @property
    def classes(self):
        return self.pool.classes

    @property
    def steps_done(self):
        return 1

    def fit(self, train, *, seed=0):
        yield {"step": 1}

    def sample(self, labels, *, seed):
        g = torch.Generator().manual_seed(seed)
        pool = self.train if self.copying else self.pool
        picks = []
        for y in labels.tolist():
            members = torch.nonzero(pool.labels == y).flatten()
            picks.append(members[0] if self.collapsed else members[torch.randint(len(members), (1,), generator=g)][0])
        images = pool.images[torch.stack(picks)].clone()
        return images * float("nan") if self.diverged else images

    def save(self, path):
        torch.save({"collapsed": self.collapsed, "copying": self.copying, "diverged": self.diverged}, path)

    @classmethod
    def load(cls, path):
        g = cls()
        state = torch.load(path)
        g.collapsed, g.copying, g.diverged = state["collapsed"], state["copying"], state.get("diverged", False)
        return g


@pytest.fixture
def replay(real):  # noqa: F811
    Replay.pool, Replay.train = real["honest"], real["train"]
    return Replay()


def _audit(auditor, generator, labels):  # noqa: F811
    images = generator.sample(labels, seed=3)
    screen, feats = auditor.screen(images, labels)
    return auditor.summary(screen, feats, images=images)


@pytest.mark.parametrize("collapsed", [True, False])
def test_the_audit_flags_one_image_per_class_and_passes_real_images(auditor, replay, collapsed):  # noqa: F811
    replay.collapsed = collapsed
    labels = torch.arange(3).repeat_interleave(30)
    summary = _audit(auditor, replay, labels)
    figures = summary["diversity"]["per_class"]
    warnings = A.warnings_for(summary)
    if collapsed:
        assert all(f["collapsed"] and f["synthetic"] == pytest.approx(0, abs=1e-6) for f in figures.values())
        assert all(f["ratio_interval"][1] == pytest.approx(0, abs=1e-6) for f in figures.values())
        for name, f in figures.items():
            assert any(f"class {name} is collapsed" in w and f"real {f['real']:.3f}" in w for w in warnings)
    else:  # new real images of the class: as varied as the training images
        assert not any(f["collapsed"] for f in figures.values())
        # 30 draws of new real images read 0.62-1.26x the training figure (15 draws a class): far from 0.5
        assert all(0.6 < f["ratio"] < 1.4 for f in figures.values())
        # the draw's own spread, from 30 images: about +-0.1 (docs/generators.md)
        assert all(low < f["ratio"] < high and 0.05 < high - low < 0.6 for f in figures.values()
                   for low, high in [f["ratio_interval"]])
        assert not any("collapsed" in w for w in warnings)


def test_selection_never_keeps_a_collapsed_checkpoint(tmp_path, real, replay):  # noqa: F811
    judge, accuracy = train_judge(real["train"], real["heldout"], seed=0, steps=150)
    scorer = Scorer(judge, real["train"], per_class=16, seed=1, trusted=True)
    for order in ([True, False, True], [False, True]):
        folder = RunFolder(tmp_path / "".join("c" if c else "r" for c in order))
        folder.folder(RunFolder.CHECKPOINTS)
        folder.folder(RunFolder.SAMPLES)
        history = G.History(judge_accuracy=accuracy)
        checkpoint = G.Checkpointer(folder, replay, scorer, history, classes=real["train"].classes, seed=0)
        for step, collapsed in enumerate(order, 1):
            replay.collapsed = collapsed
            history.rows.append({"step": step, "d_loss": 1.0, "g_loss": 1.0})
            checkpoint(step)
        assert [bool(s["collapsed"]) for s in history.scores] == order
        chosen, path = G._choose(Replay, replay, folder, history)
        assert path.name == "best.pt" and chosen.collapsed is False
        assert folder.read_json(RunFolder.SELECTION)["used"] == "best.pt"
        warnings = warnings_for(history.scores)
        assert not any("is collapsed" in w for w in warnings)  # the kept checkpoint is not
        folder.close_board()


def _per_class(*ratios):
    return {f"c{i}": {"diversity": r, "accuracy": 1.0} for i, r in enumerate(ratios)}


def test_a_collapsed_checkpoint_loses_even_with_the_higher_score():
    diverse = {"step": 1, "score": 0.3, "collapsed": [], "trusted": True, "per_class": _per_class(0.9, 0.8)}
    collapsed = {"step": 2, "score": 0.9, "collapsed": ["c1"], "trusted": True, "per_class": _per_class(0.9, 0.3)}
    assert max([diverse, collapsed], key=rank) is diverse
    # all collapsed, a trusted judge: the best score
    less = dict(collapsed, step=1, score=0.5, per_class=_per_class(0.6, 0.45))
    assert max([collapsed, less], key=rank) is collapsed
    # an untrusted judge: the latest checkpoint without a collapsed class
    untrusted = [dict(s, trusted=False) for s in (diverse, collapsed)] + [dict(diverse, step=3, trusted=False)]
    assert max(untrusted[:2], key=rank)["step"] == 1 and max(untrusted, key=rank)["step"] == 3
    # all collapsed, an untrusted judge: the least collapsed (its worst class), not the latest
    both = [dict(less, trusted=False), dict(collapsed, trusted=False)]
    assert max(both, key=rank)["step"] == 1 and max(both[::-1], key=rank)["step"] == 1
    assert "least collapsed, of iteration 1 (worst class 0.45x" in " ".join(warnings_for(both))


def test_a_copying_checkpoint_loses_to_a_clean_or_collapsed_one():
    clean = {"step": 1, "score": 0.3, "collapsed": [], "trusted": True, "per_class": _per_class(0.9, 0.8),
             "near_copies": 0}
    copying = dict(clean, step=2, score=0.95, per_class=_per_class(1.0, 1.0), near_copies=3, images=64)
    collapsed = dict(clean, step=3, collapsed=["c1"], per_class=_per_class(0.9, 0.3))
    assert max([copying, clean], key=rank) is clean
    assert max([copying, collapsed], key=rank) is collapsed  # copying training images is the worse harm
    fewer = dict(copying, step=4, near_copies=1)
    assert max([copying, fewer], key=rank) is fewer
    assert any("near copies of training images" in w and "1 of its 64" in w for w in warnings_for([copying, fewer]))
    assert max([clean, {k: v for k, v in copying.items() if k != "near_copies"}], key=rank)["step"] == 2  # old runs


def test_selection_counts_near_copies_and_never_keeps_a_copying_checkpoint(tmp_path, real, replay):  # noqa: F811
    judge, accuracy = train_judge(real["train"], real["heldout"], seed=0, steps=150)
    scorer = Scorer(judge, real["train"], per_class=16, seed=1, trusted=True, heldout=real["heldout"])
    replay.copying = True  # its training images: every one a copy, as varied as the real data
    copying = scorer(replay)
    assert copying["near_copies"] == 48 and not copying["collapsed"]
    replay.copying = False  # real images it never saw: none
    assert scorer(replay)["near_copies"] == 0
    folder = RunFolder(tmp_path / "run")
    folder.folder(RunFolder.CHECKPOINTS)
    folder.folder(RunFolder.SAMPLES)
    history = G.History(judge_accuracy=accuracy)
    checkpoint = G.Checkpointer(folder, replay, scorer, history, classes=real["train"].classes, seed=0)
    for step, copies in enumerate([False, True], 1):  # the copying checkpoint comes last and scores as well
        replay.copying = copies
        history.rows.append({"step": step, "d_loss": 1.0, "g_loss": 1.0})
        checkpoint(step)
    chosen, path = G._choose(Replay, replay, folder, history)
    assert path.name == "best.pt" and chosen.copying is False
    assert [s["near_copies"] for s in folder.read_json(RunFolder.SELECTION)["scores"]] == [0, 48]
    folder.close_board()


def test_a_checkpoint_that_samples_nan_is_recorded_and_never_chosen(tmp_path, real, replay):  # noqa: F811
    """A NaN checkpoint scored as clean (min(1, NaN) is 1, every prediction class 0) and, under an untrusted judge,
    could be the latest clean one; the run then failed deep inside the audit."""
    judge, accuracy = train_judge(real["train"], real["heldout"], seed=0, steps=150)
    scorer = Scorer(judge, real["train"], per_class=16, seed=1, trusted=False)
    folder = RunFolder(tmp_path / "run")
    folder.folder(RunFolder.CHECKPOINTS)
    folder.folder(RunFolder.SAMPLES)
    history = G.History(judge_accuracy=accuracy)
    checkpoint = G.Checkpointer(folder, replay, scorer, history, classes=real["train"].classes, seed=0,
                                shape=tuple(real["train"].images.shape[1:]))
    for step, diverged in enumerate([False, True], 1):  # the diverged one comes last: an untrusted judge's pick
        replay.diverged = diverged
        history.rows.append({"step": step, "d_loss": 1.0, "g_loss": 1.0})
        checkpoint(step)
    assert [s.get("diverged", False) for s in history.scores] == [False, True]
    chosen, path = G._choose(Replay, replay, folder, history)
    assert path.name == "best.pt" and chosen.diverged is False
    assert "sampled NaN or infinite values at iteration 2: its training diverged there; the checkpoint of " \
           "iteration 1 is used" in " ".join(warnings_for(history.scores))
    assert (folder.path / RunFolder.SAMPLES / "iter_000002.png").is_file()  # its grid is drawn all the same
    only = warnings_for(history.scores[1:])
    assert len(only) == 1 and "never recovered; a lower learning rate, or precision: fp32" in only[0]
    folder.close_board()


def test_diversity_settings_fit_every_image_size():
    for side in (8, 16, 32, 56, 112, 128):
        g = torch.Generator().manual_seed(side)
        x = torch.rand(4, 1, side, side, generator=g) * 2 - 1
        assert D.diversity(x, side=None) > 0.5  # noise: nothing alike
        # layouts nothing alike (pixel noise averages out to a flat grey layout: similar, as it looks)
        x = torch.nn.functional.interpolate(torch.rand(4, 1, 4, 4, generator=g) * 2 - 1, size=(side, side),
                                            mode="bilinear")
        assert D.diversity(x) > 0.5
        assert D.diversity(x[:1].expand(4, -1, -1, -1)) == pytest.approx(0, abs=1e-6)
    assert len(D.settings(56)[1]) == 3 and len(D.settings(112)[1]) == 4
    assert D.diversity(torch.zeros(1, 1, 16, 16)) is None


def _grain(n: int, shape, g: torch.Generator, sd: float = 0.15) -> torch.Tensor:
    """Blotchy texture a few pixels across, s.d. about ``sd``: a smoothed random field, one per image."""
    x = torch.nn.functional.avg_pool2d(torch.randn(n, *shape, generator=g), 3, 1, 1, count_include_pad=False)
    return sd * x / x.std()


def test_grain_is_not_variety(real):  # noqa: F811
    # one image per class, each copy with its own blotchy grain (what a collapsed AC-GAN drew, its grids
    # sixteen copies of one blob) is collapsed; real images with the same grain keep their variety
    g = torch.Generator().manual_seed(0)
    images, labels, classes = real["train"].images, real["train"].labels, real["train"].classes
    for c in range(len(classes)):
        x = images[labels == c]
        one = (x[:1] + _grain(len(x), x.shape[1:], g)).clamp(-1, 1)
        varied = (x + _grain(len(x), x.shape[1:], g)).clamp(-1, 1)
        base = D.diversity(x, seed=c)
        assert D.diversity(one, seed=c) / base < D.COLLAPSED < 0.8 < D.diversity(varied, seed=c) / base
        # at full resolution MS-SSIM counts the grain as structure: the blob is not seen (the bug fixed)
        assert D.diversity(one, seed=c, side=None) / D.diversity(x, seed=c, side=None) > D.COLLAPSED
    figures = D.per_class(torch.cat([images[labels == c][:1].expand(8, -1, -1, -1) + _grain(8, images.shape[1:], g)
                                     for c in range(len(classes))]).clamp(-1, 1),
                          torch.arange(len(classes)).repeat_interleave(8), images, labels, classes)
    assert D.collapsed(figures) == classes


def test_the_layout_is_what_is_compared():
    x = torch.rand(2, 1, 56, 56, generator=torch.Generator().manual_seed(0))
    assert D.layout(x).shape[-1] == 11 and D.layout(x, None) is x  # 5 x 5 blocks
    assert D.layout(torch.rand(2, 1, 128, 128)).shape[-1] == 10 and D.layout(torch.rand(2, 1, 16, 16)).shape[-1] == 16


def test_the_ratio_interval_covers_the_population_figure_and_narrows_with_more_images():
    """Pairs' values |x_i - x_j| of normal draws: their population mean is 2 / sqrt(pi). The bootstrap's 95 %
    interval from n draws should hold it about 95 % of the time (94 % in these 150 tries at 60 draws, the audit's
    pool; 90 % at 30: a percentile bootstrap runs a little narrow on few), and narrow as n grows."""
    g = torch.Generator().manual_seed(0)
    truth = 2 / torch.pi**0.5

    def interval(n: int) -> tuple[float, float]:
        x = torch.randn(n, generator=g)
        i, j = torch.triu_indices(n, n, offset=1)
        means = D.bootstrap(n, i, j, (x[i] - x[j]).abs(), resamples=300, seed=int(torch.randint(1 << 30, (1,), generator=g)))
        return float(torch.quantile(means, 0.025)), float(torch.quantile(means, 0.975))

    spans = [interval(60) for _ in range(150)]
    assert 0.88 <= sum(low <= truth <= high for low, high in spans) / len(spans) <= 0.99
    wide = sum(high - low for low, high in spans) / len(spans)
    narrow = sum(high - low for low, high in (interval(240) for _ in range(10))) / 10
    assert 0.35 < narrow / wide < 0.65  # about 1 / sqrt(4)


def test_the_interval_averages_pairs_of_two_different_images_and_needs_every_pair():
    for n in (3, 5, 60):  # every pair 1: every resample's mean is exactly 1, whatever it drew twice
        i, j = torch.triu_indices(n, n, offset=1)
        means = D.bootstrap(n, i, j, torch.ones(len(i)), resamples=500)
        assert len(means) == 500 and torch.equal(means, torch.ones(500, dtype=means.dtype))
    i, j = torch.triu_indices(3, 3, offset=1)  # pairs (0, 1), (0, 2), (1, 2); a resample draws 2 or 3 images
    means = D.bootstrap(3, i, j, torch.tensor([0.0, 0.0, 6.0]), resamples=2000)
    # images {0, 1} or {0, 2}, either twice: 0; {1, 2}: 6; all three (2 in 9 draws): 12 / 6 = 2; one image thrice:
    # drawn again (counting a pair of one image with itself would give 24 / 9 and 12 / 9 instead of 6 and 2)
    assert set(means.unique().tolist()) == {0.0, 2.0, 6.0}
    assert D.bootstrap(5, *torch.triu_indices(5, 5, offset=1)[:, :-1], torch.ones(9)) is None  # not every pair
    g = torch.Generator().manual_seed(0)
    figures = D.per_class(torch.rand(12, 1, 16, 16, generator=g) * 2 - 1, torch.arange(2).repeat(6),
                          torch.rand(12, 1, 16, 16, generator=g), torch.arange(2).repeat(6), ["a", "b"], pairs=10,
                          interval=True)
    assert all(f["ratio"] is not None and f["ratio_interval"] is None for f in figures.values())
    assert "ratio_interval" not in D.per_class(torch.rand(4, 1, 16, 16, generator=g), torch.arange(2).repeat(2),
                                               torch.rand(4, 1, 16, 16, generator=g), torch.arange(2).repeat(2),
                                               ["a", "b"])["a"]
