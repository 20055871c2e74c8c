"""The contract checks of the two trained roles: ``check_generator`` and ``check_classifier``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from augkit.extension.roles import Classifier, Generator
from augkit.testing._checker import N_CLASSES, _build, _check_rows, _check_tensor, _Checker, _labeled_images


def check_generator(cls: type[Generator], **options: Any) -> None:
    """Check a Generator: ``cls`` subclasses ``augkit.Generator``, has a str ``version``, its ``Options``
    forbid unknown keys, and

    * ``fit(train, seed=0)`` on 12 images of 3 classes (shape from the options' ``channels`` and
      ``image_size``, else 1 and 16) yields dict rows, each with an int ``"step"``, increasing;
      ``steps_done`` is 0 before and the last row's step after; ``classes`` is then ``train.classes``;
    * ``sample(labels, seed=s)`` returns finite float32 ``(N, C, H, W)`` in [-1, 1]; the same seed
      gives identical images, another seed different ones; other labels, other images;
    * a second instance fitted with the same seed samples the same images (within 1e-4);
    * ``save(path)`` then ``cls.load(path)`` samples identical images for the same seed, whatever
      the global torch RNG state (loading may use it; sampling must not depend on it), with the
      same ``classes`` and ``steps_done``.
    """
    c = _Checker(cls)
    with torch.random.fork_rng(devices=[]):
        gen = _build(c, cls, Generator, options)
        c.expect(isinstance(getattr(cls, "version", None), str), "version",
                 "a str class attribute (exports record it)", lambda: repr(getattr(cls, "version", None)))
        channels, size = getattr(gen.options, "channels", None), getattr(gen.options, "image_size", None)
        train = _labeled_images(channels or 1, size or 16, per_class=4, seed=0)
        labels = torch.tensor([0, 1, 2, 2, 1, 0])

        before = c.call("steps_done", lambda: gen.steps_done)
        c.expect(before == 0, "steps_done before fit", "0", before)
        rows = c.call("fit(train, seed=0)", lambda: list(gen.fit(train, seed=0)))
        _check_rows(c, rows, "fit(train, seed=0)")
        if rows:  # augkit resume keeps the log rows and checkpoint scores up to steps_done
            done = c.call("steps_done after fit", lambda: gen.steps_done)
            c.expect(done == rows[-1]["step"], "steps_done after fit", f"the last row's step, {rows[-1]['step']}", done)
        classes = c.call("classes after fit(train)", lambda: list(gen.classes))
        c.expect(classes == train.classes, "classes after fit(train)",
                 f"train.classes, {train.classes} (labels index them in every export)", classes)
        check = "sample(labels, seed=0)"
        a = c.call(check, lambda: gen.sample(labels, seed=0))
        _check_tensor(c, a, check, (6, channels, size, size), "(N, channels, image_size, image_size)")
        c.expect(a.min() >= -1 and a.max() <= 1, check, "values in [-1, 1]",
                 lambda: f"values in [{a.min().item():.4g}, {a.max().item():.4g}]")
        again = c.call("sample(labels, seed=0) again", lambda: gen.sample(labels.clone(), seed=0))
        c.same(a, again, "sample is seeded", "identical images for the same seed")
        other = c.call("sample(labels, seed=1)", lambda: gen.sample(labels, seed=1))
        c.expect(not torch.equal(a, other), "sample is seeded", "different images for seeds 0 and 1", "identical images")
        check = "sample follows labels"
        zero = c.call("sample(all label 0, seed=0)", lambda: gen.sample(torch.zeros_like(labels), seed=0))
        two = c.call("sample(all label 2, seed=0)", lambda: gen.sample(torch.full_like(labels, 2), seed=0))
        c.expect(not torch.equal(zero, two), check, "different images for labels 0 and 2 (same seed)", "identical images")

        def refit() -> Tensor:
            twin = cls(cls.Options(**options))
            list(twin.fit(train, seed=0))
            return twin.sample(labels, seed=0)

        check = "a second instance fitted with the same seed"
        c.same(a, c.call(check, refit), check, "the same samples (fit must seed every random choice it makes)", atol=1e-4)

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "generator.ckpt"
            c.call("save(path)", lambda: gen.save(path))
            c.expect(path.exists(), "save(path)", "something written at path", "nothing")
            loaded = c.call("cls.load(path)", lambda: cls.load(path))
        c.expect(isinstance(loaded, cls), "cls.load(path)", f"a {cls.__name__}", lambda: type(loaded).__name__)
        for member in ("classes", "steps_done"):
            kept = getattr(gen, member)
            back = c.call(f"cls.load(path).{member}", lambda: getattr(loaded, member))
            c.expect(back == kept, f"cls.load(path).{member}", f"the saved generator's, {kept!r}", repr(back))
        check = "save(path), then cls.load(path).sample(labels, seed=0)"
        torch.manual_seed(12345)  # another global RNG state than the original sampled under
        b = c.call(check, lambda: loaded.sample(labels, seed=0))
        c.same(a, b, check, "the images the saved generator samples with seed 0, whatever the global RNG state")


def check_classifier(cls: type[Classifier], **options: Any) -> None:
    """Check a Classifier: ``cls`` subclasses ``augkit.Classifier``, its ``Options`` forbid unknown keys, and

    * ``fit(train, val, seed=0)`` (18 and 6 images of 3 classes, shape from the options'
      ``channels``/``image_size``, else 1/16) yields dict rows with an int ``"step"``, increasing;
    * ``predict_proba(images)`` returns finite float32 ``(N, 3)``, non-negative rows summing to 1;
      an image's prediction does not depend on the rest of the batch (evaluation mode);
    * a second instance fitted with the same seed predicts the same (within 1e-5);
    * when it implements ``budget_steps`` (the default ``evaluation.budget: steps`` needs it), that is a
      positive int, and ``fit(train, val, seed=0, steps=...)`` trains to it: rows as above, then predictions.
    """
    c = _Checker(cls)
    with torch.random.fork_rng(devices=[]):
        clf = _build(c, cls, Classifier, options)
        channels, size = getattr(clf.options, "channels", None), getattr(clf.options, "image_size", None)
        train = _labeled_images(channels or 1, size or 16, per_class=6, seed=0)
        val = _labeled_images(channels or 1, size or 16, per_class=2, seed=1)

        rows = c.call("fit(train, val, seed=0)", lambda: list(clf.fit(train, val, seed=0)))
        _check_rows(c, rows, "fit(train, val, seed=0)")
        check = "predict_proba(images)"
        probs = c.call(check, lambda: clf.predict_proba(val.images))
        _check_tensor(c, probs, check, (len(val), N_CLASSES), "(N, n_classes)")
        c.expect((probs >= 0).all(), check, "non-negative probabilities", lambda: f"minimum {probs.min().item():.4g}")
        c.expect(torch.allclose(probs.sum(1), torch.ones(len(probs)), atol=1e-4), check, "rows summing to 1",
                 lambda: f"row sums {probs.sum(1).tolist()}")
        check = "predict_proba(images[:2])"
        c.same(probs[:2], c.call(check, lambda: clf.predict_proba(val.images[:2])), check,
               "the first two rows of predict_proba(images) (predict in evaluation mode)", atol=1e-5)

        def refit() -> Tensor:
            twin = cls(cls.Options(**options))
            list(twin.fit(train, val, seed=0))
            return twin.predict_proba(val.images)

        check = "a second instance fitted with the same seed"
        c.same(probs, c.call(check, refit), check, "the same predictions (fit must seed every random choice it makes)",
               atol=1e-5)

        if cls.trains_to_budget():
            budget = c.call(f"budget_steps({len(train)})", lambda: cls(cls.Options(**options)).budget_steps(len(train)))
            c.expect(isinstance(budget, int) and budget > 0, f"budget_steps({len(train)})",
                     "a positive int (the optimizer steps fit takes over that many images)", repr(budget))
            check = f"fit(train, val, seed=0, steps={budget})"
            twin = cls(cls.Options(**options))
            _check_rows(c, c.call(check, lambda: list(twin.fit(train, val, seed=0, steps=budget))), check)
            _check_tensor(c, c.call(f"after {check}: predict_proba(images)", lambda: twin.predict_proba(val.images)),
                          f"after {check}: predict_proba(images)", (len(val), N_CLASSES), "(N, n_classes)")
