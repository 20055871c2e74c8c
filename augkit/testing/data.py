"""The contract checks of the data roles: ``check_dataset`` and ``check_preprocessor``."""

from __future__ import annotations

import numbers
import pickle
from typing import Any

import numpy as np

from augkit.extension.roles import DataSource, Preprocessor, Sample
from augkit.testing._checker import _build, _Checker, _fits

LOADS = 3  # samples whose images check_dataset loads: loading can be slow (DICOM, NIfTI)


def _same(a: np.ndarray, b: Any) -> bool:
    return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def check_dataset(cls_or_instance: type[DataSource] | DataSource, **options: Any) -> None:
    """Check a DataSource (a class built from ``options``, or an instance): the class subclasses
    ``augkit.DataSource``, its ``Options`` forbid unknown keys, and

    * ``classes`` is a non-empty list of unique, non-empty strings;
    * ``samples()`` yields at least one ``augkit.Sample``, each with an int label indexing
      ``classes``, a non-empty str ``group`` and ``key`` (keys unique) and a dict ``meta``;
    * every ``Sample.load`` pickles (the core loads images in a process pool: use
      ``functools.partial`` of a module-level function, never a lambda or a closure);
    * the first few ``load()`` return a numeric ``(H, W)`` or ``(H, W, C<=4)`` numpy array, the
      same from a pickled copy of ``load``;
    * a second ``samples()`` pass, and a second instance with the same options, yield the same
      keys, labels and groups in the same order and load identical arrays;
    * ``fingerprint()`` is a non-empty str, the same for both instances.
    """
    instance = isinstance(cls_or_instance, DataSource)
    if instance and options:
        raise TypeError("check_dataset: give options with a class, not with an instance")
    cls = type(cls_or_instance) if instance else cls_or_instance
    c = _Checker(cls)
    built = _build(c, cls, DataSource, cls_or_instance.options.model_dump() if instance else options)
    source = cls_or_instance if instance else built
    twin = c.call("a second instance with the same options", lambda: cls(source.options))

    classes = c.call("classes", lambda: source.classes)
    c.expect(isinstance(classes, list) and classes and all(isinstance(n, str) and n for n in classes), "classes",
             "a non-empty list of non-empty str", repr(classes))
    c.expect(len(set(classes)) == len(classes), "classes", "unique class names", repr(classes))

    samples = c.call("samples()", lambda: list(source.samples()))
    c.expect(samples, "samples()", "at least one Sample", "none")
    for i, s in enumerate(samples):
        where = f"samples()[{i}]"
        c.expect(isinstance(s, Sample), where, "an augkit.Sample", lambda: type(s).__name__)
        c.expect(isinstance(s.label, numbers.Integral) and not isinstance(s.label, bool) and 0 <= s.label < len(classes),
                 where, f"label an int in [0, {len(classes)})", lambda: repr(s.label))
        c.expect(isinstance(s.group, str) and s.group, where, "group a non-empty str (the patient)", lambda: repr(s.group))
        c.expect(isinstance(s.key, str) and s.key, where, "key a non-empty str", lambda: repr(s.key))
        c.expect(isinstance(s.meta, dict), where, "meta a dict", lambda: type(s.meta).__name__)
        try:
            pickle.dumps(s.load)
        except Exception as exc:
            c.expect(False, "Sample.load is picklable", "every load to pickle: the core loads images in a process pool; make "
                   "it a functools.partial of a module-level function or a method, not a lambda, closure or local "
                   "function", f"samples()[{i}] (key {s.key!r}): {type(exc).__name__}: {exc}")
    keys = [s.key for s in samples]
    c.expect(len(set(keys)) == len(keys), "samples()", "unique keys (they name cache entries)",
             lambda: f"{next(k for k in keys if keys.count(k) > 1)!r} more than once")

    arrays = []
    for i, s in enumerate(samples[:LOADS]):
        check = f"samples()[{i}].load()"
        array = c.call(check, s.load)
        c.expect(isinstance(array, np.ndarray), check, "a numpy array", lambda: type(array).__name__)
        c.expect(array.size and (array.ndim == 2 or (array.ndim == 3 and 1 <= array.shape[2] <= 4)), check,
                 "a non-empty (H, W) or (H, W, C) array with C <= 4 (channels last)", f"shape {array.shape}")
        c.expect(np.issubdtype(array.dtype, np.number) or array.dtype == bool, check, "a numeric dtype", array.dtype)
        again = c.call(f"{check} of a pickled copy", lambda: pickle.loads(pickle.dumps(s.load))())
        c.expect(_same(array, again), f"{check} is deterministic", "the same array from load() and from a pickled copy "
                 "of load() (as a worker process calls it)", f"a different array for key {s.key!r}")
        arrays.append(array)

    for name, other in (("a second samples() pass", source), ("a second instance with the same options", twin)):
        again = c.call(f"samples() of {name}", lambda: list(other.samples()))
        ids = [[(s.key, s.label, s.group) for s in run] for run in (samples, again)]
        c.expect(ids[0] == ids[1], "samples() is deterministic", f"{name} to yield the same keys, labels and groups "
                 "in the same order", lambda: f"{len(again)} samples, not {len(samples)}" if len(again) != len(samples)
                 else f"sample {next(i for i, (x, y) in enumerate(zip(*ids)) if x != y)} differs")
        for i, (array, s) in enumerate(zip(arrays, again)):
            b = c.call(f"samples()[{i}].load() of {name}", s.load)
            c.expect(_same(array, b), "load() is deterministic", f"{name} to load identical arrays",
                     f"a different array for key {s.key!r}")

    prints = c.call("fingerprint()", lambda: [source.fingerprint(), source.fingerprint(), twin.fingerprint()])
    c.expect(isinstance(prints[0], str) and prints[0], "fingerprint()", "a non-empty str", repr(prints[0]))
    c.expect(len(set(prints)) == 1, "fingerprint()",
             "one fingerprint across calls and instances with the same options (it keys the cache)", prints)


def _preprocessor_inputs() -> dict[str, np.ndarray]:
    """A bright blob on a dark, noisy background in the dtypes and shapes real files give."""
    rng = np.random.default_rng(0)

    def blob(h: int, w: int) -> np.ndarray:  # in [0, 1]
        y, x = np.mgrid[0:h, 0:w]
        inside = ((y - h / 2) / (0.35 * h)) ** 2 + ((x - w / 2) / (0.3 * w)) ** 2 < 1
        return np.clip(0.1 + 0.7 * inside + 0.05 * rng.standard_normal((h, w)), 0, 1)

    return {
        "uint8 (H, W)": (blob(48, 40) * 255).astype(np.uint8),
        "uint16 (H, W)": (blob(40, 48) * 4095).astype(np.uint16),
        "int16 (H, W)": (blob(32, 36) * 3000 - 1024).astype(np.int16),
        "float32 (H, W), odd size": blob(33, 47).astype(np.float32),
        "float64 (H, W), odd size": blob(31, 29) * 500.0,
        "RGB uint8 (H, W, 3)": (np.stack([blob(30, 44)] * 3, axis=-1) * 255).astype(np.uint8),
        "constant uint8 (H, W)": np.full((24, 24), 7, np.uint8),
    }


def check_preprocessor(cls: type[Preprocessor], **options: Any) -> None:
    """Check a Preprocessor: ``cls`` subclasses ``augkit.Preprocessor``, its ``Options`` forbid unknown keys, and

    * on uint8, uint16, int16, float32 and float64 gray images, an RGB ``(H, W, 3)`` image,
      odd sizes and a constant image, ``__call__`` returns a finite float32
      ``(channels, image_size, image_size)`` numpy array in [-1, 1];
    * it leaves its input unchanged and gives identical outputs for identical inputs.
    """
    c = _Checker(cls)
    pre = _build(c, cls, Preprocessor, options)
    channels, size = getattr(pre.options, "channels", None), getattr(pre.options, "image_size", None)
    for name, image in _preprocessor_inputs().items():
        check = f"__call__({name} image of shape {image.shape})"
        original = image.copy()
        out = c.call(check, lambda: pre(image))
        c.expect(isinstance(out, np.ndarray), check, "a numpy array", lambda: type(out).__name__)
        c.expect(out.dtype == np.float32, check, "dtype float32", out.dtype)
        c.expect(_fits(out.shape, (channels, size, size)), check,
                 f"shape (channels, image_size, image_size) = {(channels, size, size)}", out.shape)
        c.expect(np.isfinite(out).all(), check, "finite values", lambda: f"{int((~np.isfinite(out)).sum())} NaN/inf")
        c.expect(out.min() >= -1 and out.max() <= 1, check, "values in [-1, 1]", lambda: f"[{out.min():.4g}, {out.max():.4g}]")
        c.expect(np.array_equal(image, original), check, "the input left unchanged", "it was modified in place")
        again = c.call(check, lambda: pre(original.copy()))
        c.expect(_same(out, again), f"{check} is deterministic", "identical outputs for identical inputs", "different ones")
