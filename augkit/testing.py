"""The plugin contract kit, in the spirit of scikit-learn's ``check_estimator``::

    from augkit.testing import check_generator

    def test_contract():
        check_generator(MyGAN, image_size=16, width=8, iterations=2)

Each ``check_*`` builds the plugin as the runner does (``cls(cls.Options(**options))``), runs it
on tiny synthetic data and raises :class:`ContractError` (an ``AssertionError``) naming the
plugin class, the check, what was expected and what came back. Pass options that make the
plugin tiny: the checks train on a dozen 16x16 images. The global torch RNG is left alone.
"""

from __future__ import annotations

import csv
import hashlib
import numbers
import pickle
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from torch import Tensor

from augkit.extension.roles import (Classifier, DataSource, Exporter, Generator, LabeledImages, Plugin, Preprocessor, Sample,
                               SyntheticBatch)

__all__ = ["ContractError", "check_classifier", "check_dataset", "check_distributed", "check_exporter", "check_generator",
           "check_preprocessor"]

UNKNOWN_KEY = "augkit_contract_unknown_option"
MANIFEST_COLUMNS = ("file", "class", "generator", "seed", "index", "audit_flags")
LOADS = 3  # samples whose images check_dataset loads: loading can be slow (DICOM, NIfTI)
N_CLASSES = 3


class ContractError(AssertionError):
    """A plugin breaks the augkit contract; the message names the plugin, the check, expected and got."""


class _Checker:
    def __init__(self, cls: Any):  # failures read "<Plugin>: <check>: expected <...>; got <...>"
        self.plugin = getattr(cls, "__name__", repr(cls))

    def expect(self, ok: Any, check: str, expected: str, got: Any = "something else") -> None:
        if not ok:  # ``got`` may be a callable: it is only worked out for the message
            raise ContractError(f"{self.plugin}: {check}: expected {expected}; got {got() if callable(got) else got}")

    def call(self, check: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; an exception it raises becomes a ContractError naming the check."""
        try:
            return fn()
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"{self.plugin}: {check}: raised {type(exc).__name__}: {exc}") from exc

    def same(self, a: Tensor, b: Any, check: str, expected: str, atol: float = 0.0) -> None:
        """``b`` is a tensor like ``a``, equal to it within ``atol``."""
        like = isinstance(b, Tensor) and b.shape == a.shape and b.dtype == a.dtype
        diff = (a.float() - b.float()).abs().max().item() if like and a.numel() else 0.0
        self.expect(like and diff <= atol, check, expected, f"max abs difference {diff:.3g}" if like
                    else f"{type(b).__name__} {tuple(getattr(b, 'shape', ()))} {getattr(b, 'dtype', '')}")


def _build(c: _Checker, cls: Any, role: type[Plugin], options: dict[str, Any]) -> Plugin:
    """The class is a ``role`` whose Options forbid unknown keys; build it as the runner does."""
    c.expect(isinstance(cls, type) and issubclass(cls, role), "class", f"a subclass of augkit.{role.__name__}", repr(cls))
    opts = c.call(f"Options(**{options!r})", lambda: cls.Options(**options))
    check = "Options forbids unknown keys"
    try:
        cls.Options(**{**options, UNKNOWN_KEY: 1})
    except ValidationError as exc:
        extra = [e for e in exc.errors() if e["type"] == "extra_forbidden" and UNKNOWN_KEY in map(str, e["loc"])]
        c.expect(extra, check, f"an 'extra_forbidden' error for {UNKNOWN_KEY!r}", lambda: exc.errors())
    else:
        c.expect(False, check, f"a ValidationError for the unknown key {UNKNOWN_KEY!r} (a misspelt recipe option "
                 f"must not pass silently: subclass augkit.{role.__name__}.Options: extra='forbid')", "no error")
    return c.call("cls(options)", lambda: cls(opts))


def _fits(actual: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(actual) == len(expected) and all(e is None or e == a for a, e in zip(actual, expected))


def _labeled_images(channels: int, size: int, per_class: int, seed: int) -> LabeledImages:
    """Noisy images whose brightness gives the class away: learnable, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat(per_class)
    level = torch.linspace(-0.6, 0.6, N_CLASSES)[labels].view(-1, 1, 1, 1)
    images = (level + 0.3 * torch.randn(len(labels), channels, size, size, generator=g)).clamp(-1, 1)
    return LabeledImages(images, labels, ["a", "b", "c"], [f"p{i}" for i in range(len(labels))])


def _check_rows(c: _Checker, rows: list[Any], check: str) -> None:
    """Training log rows: dicts of plain numbers, each with an int "step", steps increasing."""
    c.expect(rows, check, "at least one log row", "none")
    for i, row in enumerate(rows):
        c.expect(isinstance(row, dict), check, "dict log rows", lambda: f"row {i}: {type(row).__name__}")
        step = row.get("step")
        c.expect(isinstance(step, numbers.Integral) and not isinstance(step, bool), check,
                 'every row to have an int "step"', lambda: f"row {i}: {row!r}")
        bad = {k: v for k, v in row.items() if not isinstance(k, str) or not isinstance(v, numbers.Real)}
        c.expect(not bad, check, "str keys and plain numbers as values (.item() a tensor)", lambda: f"row {i}: {bad!r}")
    steps = [r["step"] for r in rows]
    c.expect(all(a < b for a, b in zip(steps, steps[1:])), check, '"step" to increase from row to row', steps)


def _check_tensor(c: _Checker, out: Any, check: str, shape: tuple[int | None, ...], what: str) -> None:
    """A finite float32 tensor of ``shape`` (None: any size)."""
    c.expect(isinstance(out, Tensor), check, "a torch.Tensor", lambda: type(out).__name__)
    c.expect(out.dtype == torch.float32, check, "dtype torch.float32", out.dtype)
    c.expect(_fits(out.shape, shape), check, f"shape {what} = {tuple(s or '*' for s in shape)}", lambda: tuple(out.shape))
    c.expect(torch.isfinite(out).all(), check, "finite values", lambda: f"{int((~torch.isfinite(out)).sum())} NaN/inf")


def check_generator(cls: type[Generator], **options: Any) -> None:
    """Check a Generator: ``cls`` subclasses ``augkit.Generator``, has a str ``version``, its ``Options``
    forbid unknown keys, and

    * ``fit(train, seed=0)`` on 12 images of 3 classes (shape from the options' ``channels`` and
      ``image_size``, else 1 and 16) yields dict rows, each with an int ``"step"``, increasing;
    * ``sample(labels, seed=s)`` returns finite float32 ``(N, C, H, W)`` in [-1, 1]; the same seed
      gives identical images, another seed different ones;
    * a second instance fitted with the same seed samples the same images (within 1e-4);
    * ``save(path)`` then ``cls.load(path)`` samples identical images for the same seed, whatever
      the global torch RNG state (loading may use it; sampling must not depend on it).
    """
    c = _Checker(cls)
    with torch.random.fork_rng(devices=[]):
        gen = _build(c, cls, Generator, options)
        c.expect(isinstance(getattr(cls, "version", None), str), "version",
                 "a str class attribute (exports record it)", lambda: repr(getattr(cls, "version", None)))
        channels, size = getattr(gen.options, "channels", None), getattr(gen.options, "image_size", None)
        train = _labeled_images(channels or 1, size or 16, per_class=4, seed=0)
        labels = torch.tensor([0, 1, 2, 2, 1, 0])

        rows = c.call("fit(train, seed=0)", lambda: list(gen.fit(train, seed=0)))
        _check_rows(c, rows, "fit(train, seed=0)")
        check = "sample(labels, seed=0)"
        a = c.call(check, lambda: gen.sample(labels, seed=0))
        _check_tensor(c, a, check, (6, channels, size, size), "(N, channels, image_size, image_size)")
        c.expect(a.min() >= -1 and a.max() <= 1, check, "values in [-1, 1]",
                 lambda: f"values in [{a.min().item():.4g}, {a.max().item():.4g}]")
        again = c.call("sample(labels, seed=0) again", lambda: gen.sample(labels.clone(), seed=0))
        c.same(a, again, "sample is seeded", "identical images for the same seed")
        other = c.call("sample(labels, seed=1)", lambda: gen.sample(labels, seed=1))
        c.expect(not torch.equal(a, other), "sample is seeded", "different images for seeds 0 and 1", "identical images")

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
    * a second instance fitted with the same seed predicts the same (within 1e-5).
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


def check_distributed(cls: type[Generator] | type[Classifier], *, processes: int = 2, timeout: float = 300,
                      **options: Any) -> None:
    """Check that a Generator or Classifier declaring ``supports_distributed`` trains over several processes.

    Starts ``processes`` (at least 2) CPU processes as torchrun would (gloo; ``RANK``,
    ``WORLD_SIZE`` ...; ``augkit.compute.distributed.init``; no GPU visible), each importing ``cls`` by
    its module and name (define it at module level of an importable module: a plugin package,
    or a test module on ``sys.path``), building it from ``options`` and fitting it on the data
    ``check_generator`` / ``check_classifier`` use. Then:

    * ``check_distributed(processes)`` accepts the options;
    * ``fit`` finishes on every rank (a rank that raises is named, with its traceback);
    * every rank yields the same rows (steps and values; keys naming wall time, ``sec`` or
      ``time``, are not compared);
    * every rank ends with the same model: ``sample(labels, seed=0)`` (a generator) or
      ``predict_proba(images)`` (a classifier) are identical on every rank.

    It takes some seconds: each process imports torch. ``timeout`` bounds the whole check.
    """
    import importlib

    c = _Checker(cls)
    c.expect(isinstance(processes, int) and processes >= 2, "processes", "at least 2 (one process checks nothing)",
             processes)
    role = Generator if isinstance(cls, type) and issubclass(cls, Generator) else Classifier
    with torch.random.fork_rng(devices=[]):
        plugin = _build(c, cls, role, options)
    c.expect(getattr(cls, "supports_distributed", False) is True, "supports_distributed",
             "True (the check trains over several processes; without it augkit never asks that)",
             repr(getattr(cls, "supports_distributed", None)))
    c.call(f"check_distributed({processes})", lambda: plugin.check_distributed(processes))

    def importable() -> bool:
        found: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            found = getattr(found, part)
        return found is cls

    where = f"{cls.__module__}.{cls.__qualname__}"
    c.expect("<locals>" not in cls.__qualname__ and cls.__module__ != "__main__" and c.call("import", importable),
             "import by name", f"{where} importable in a new process (define the class at module level of an "
             "importable module, not in a function or a script run as __main__)", "not importable")
    c.call("options pickle (they travel to the processes)", lambda: pickle.dumps(options))

    with tempfile.TemporaryDirectory(prefix="augkit-contract-") as tmp:
        for attempt in range(3):  # a free port can be taken between finding it and binding it: try another
            failure = _run_ranks(cls, role, options, processes, timeout, Path(tmp) / f"attempt{attempt}")
            if failure is None or "address already in use" not in failure.lower():
                break
        c.expect(failure is None, f"fit over {processes} processes", "every rank to finish", failure)
        results = [torch.load(Path(tmp) / f"attempt{attempt}" / f"rank{r}.pt", weights_only=False)
                   for r in range(processes)]

    def comparable(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if "sec" not in k and "time" not in k} for row in rows]

    what = "sample(labels, seed=0)" if role is Generator else "predict_proba(images)"
    for r, result in enumerate(results):
        _check_rows(c, result["rows"], f"fit over {processes} processes, rank {r}")
        _check_tensor(c, result["out"], f"{what} on rank {r}", (None,) * result["out"].dim()
                      if isinstance(result["out"], Tensor) else (), "as on one process")
    first = comparable(results[0]["rows"])
    for r, result in enumerate(results[1:], 1):
        rows = comparable(result["rows"])
        differ = next((i for i, (a, b) in enumerate(zip(first, rows)) if a != b), min(len(first), len(rows)))
        c.expect(rows == first, f"fit over {processes} processes",
                 f"rank {r} to yield rank 0's rows (log the values of the whole batch, the same on every rank)",
                 lambda: f"row {differ}: rank 0 {first[differ] if differ < len(first) else 'none'}, "
                         f"rank {r} {rows[differ] if differ < len(rows) else 'none'}")
        c.same(results[0]["out"], result["out"], f"{what} on every rank after fit over {processes} processes",
               f"rank {r} to give rank 0's result (every rank must end with the same weights)")


def _run_ranks(cls: Any, role: type[Plugin], options: dict[str, Any], processes: int, timeout: float,
               folder: Path) -> str | None:
    """Start the ranks of ``check_distributed`` in ``folder``; None when all finish, else what went wrong."""
    import os
    import subprocess
    import sys
    import time

    from augkit.compute.distributed import free_port

    folder.mkdir(parents=True)
    port = free_port()
    job = folder / "job.pkl"
    job.write_bytes(pickle.dumps({"module": cls.__module__, "name": cls.__qualname__, "options": options,
                                  "role": role.__name__, "out": str(folder)}))
    env = {k: v for k, v in os.environ.items() if k != "AUGKIT_DIST_BACKEND"}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(processes),
               LOCAL_WORLD_SIZE=str(processes), CUDA_VISIBLE_DEVICES="",  # CPU processes, gloo, on any machine
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    logs = [open(folder / f"rank{r}.log", "w") for r in range(processes)]  # files, not pipes: a chatty rank never blocks
    ranks = [subprocess.Popen([sys.executable, "-m", "augkit.testing", str(job)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=log, stderr=subprocess.STDOUT)
             for r, log in enumerate(logs)]
    deadline, failed_at = time.monotonic() + timeout, None
    try:
        while any(rank.poll() is None for rank in ranks):
            now = time.monotonic()
            if failed_at is None and any(rank.returncode not in (None, 0) for rank in ranks):
                failed_at = now  # give the others a moment to write what they saw, then stop them
            if now > deadline or (failed_at is not None and now > failed_at + 10):
                break
            time.sleep(0.1)
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
            rank.wait()
        for log in logs:
            log.close()
    if all(rank.returncode == 0 for rank in ranks):
        return None

    def said(r: int) -> str:
        error = folder / f"rank{r}-error.txt"
        return (error.read_text() if error.exists() else (folder / f"rank{r}.log").read_text())[-3000:]

    lost = ("connection reset", "connection closed", "broken pipe", "connection refused")
    failed = [r for r, rank in enumerate(ranks) if rank.returncode not in (0, None) and rank.returncode >= 0]
    # the root cause: a rank that failed by itself, not one that lost its peer
    cause = next((r for r in failed if not any(w in said(r).lower() for w in lost)), failed[0] if failed else None)
    if cause is None:
        return (f"a timeout after {timeout:g} s (a rank waiting in a collective the others never entered?); "
                f"rank 0 said: {said(0)[-1500:]}")
    return f"rank {cause} failed: {said(cause)}"


def _distributed_rank(job_path: str) -> None:
    """One rank of ``check_distributed`` (``python -m augkit.testing JOB``)."""
    import importlib
    import os
    import traceback

    from augkit.compute import distributed

    job = pickle.loads(Path(job_path).read_bytes())
    out = Path(job["out"])
    rank = int(os.environ["RANK"])
    try:
        cls: Any = importlib.import_module(job["module"])
        for part in job["name"].split("."):
            cls = getattr(cls, part)
        distributed.init(torch.device("cpu"))
        plugin = cls(cls.Options(**job["options"]))
        channels = getattr(plugin.options, "channels", None) or 1
        size = getattr(plugin.options, "image_size", None) or 16
        if job["role"] == "Generator":
            rows = list(plugin.fit(_labeled_images(channels, size, per_class=4, seed=0), seed=0))
            result = plugin.sample(torch.tensor([0, 1, 2, 2, 1, 0]), seed=0)
        else:
            val = _labeled_images(channels, size, per_class=2, seed=1)
            rows = list(plugin.fit(_labeled_images(channels, size, per_class=6, seed=0), val, seed=0))
            result = plugin.predict_proba(val.images)
        torch.save({"rows": rows, "out": result}, out / f"rank{rank}.pt")
        distributed.close()
    except BaseException:
        (out / f"rank{rank}-error.txt").write_text(traceback.format_exc())
        distributed.exit_now(1)
    distributed.exit_now(0)


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


def _batches(channels: int, seeds: tuple[int, int], value: float) -> Iterator[SyntheticBatch]:
    """What the runner passes an exporter, lazily: the second batch lost its image 1 to the audit."""
    g = torch.Generator().manual_seed(seeds[0])
    for labels, seed, index, flags in (
        (torch.tensor([0, 1, 0]), seeds[0], [0, 1, 2], [(), ("unfaithful",), ()]),
        (torch.tensor([1, 1]), seeds[1], [0, 2], [(), ()]),
    ):
        images = (value + 0.5 * torch.rand(len(labels), channels, 8, 8, generator=g)).clamp(-1, 1)
        yield SyntheticBatch(images, labels, seed, index, flags)


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_exporter(cls: type[Exporter], tmp_dir: Path | str, **options: Any) -> None:
    """Check an Exporter, writing under ``tmp_dir`` (pytest's ``tmp_path``): ``cls`` subclasses
    ``augkit.Exporter``, its ``Options`` forbid unknown keys, and

    * ``export`` of two batches (an iterator of :class:`augkit.SyntheticBatch`, as the runner
      passes them) into a folder that does not exist yet returns the path of a ``manifest.csv``
      with at least the columns file, class, generator, seed, index, audit_flags: one row per
      image, with its class name, the provenance's generator and the batch's own seed, index
      and flags; every row's file (relative to the manifest's folder) exists and is distinct;
    * a second export into the same folder raises or refuses: the first export's files stay.
    """
    c = _Checker(cls)
    exporter = _build(c, cls, Exporter, options)
    channels = getattr(exporter.options, "channels", None) or 1
    out = Path(tempfile.mkdtemp(prefix="augkit-contract-", dir=tmp_dir)) / "export"
    classes, provenance = ["normal", "virus"], {"generator": "contract-gan", "generator_version": "1"}
    check = "export(two batches, classes, out_dir, provenance)"
    manifest = c.call(check, lambda: exporter.export(_batches(channels, (11, 12), -0.5), classes, out, provenance))
    c.expect(isinstance(manifest, (str, Path)) and Path(manifest).name == "manifest.csv" and Path(manifest).is_file(),
             check, "the path of the manifest.csv it wrote", repr(manifest))
    manifest = Path(manifest)
    with open(manifest, newline="") as f:
        reader = csv.DictReader(f)
        rows, columns = list(reader), reader.fieldnames or []
    c.expect(set(MANIFEST_COLUMNS) <= set(columns), check, f"manifest.csv columns including {list(MANIFEST_COLUMNS)}", columns)
    c.expect(len(rows) == 5, check, "one manifest row per image: 5", len(rows))
    expected = sorted([("normal", "11"), ("virus", "11"), ("normal", "11"), ("virus", "12"), ("virus", "12")])
    got = sorted((r["class"], r["seed"]) for r in rows)
    c.expect(got == expected, check, f"(class, seed) of the rows {expected}", got)
    c.expect({r["generator"] for r in rows} == {"contract-gan"}, check, "the provenance's generator 'contract-gan'",
             lambda: sorted({r["generator"] for r in rows}))
    ids = sorted((int(r["seed"]), int(r["index"]), r.get("audit_flags", "")) for r in rows)
    expected_ids = [(11, 0, ""), (11, 1, "unfaithful"), (11, 2, ""), (12, 0, ""), (12, 2, "")]
    c.expect(ids == expected_ids, check, "each batch's own (seed, index, audit_flags) per row, as SyntheticBatch gives "
             f"them (indexes can skip): {expected_ids}", ids)
    files = [manifest.parent / r["file"] for r in rows]
    c.expect(all(p.is_file() for p in files) and len(set(files)) == len(files), check,
             "a distinct, existing file per row (relative to the manifest's folder)", [r["file"] for r in rows])

    before = _snapshot(out)
    try:
        cls(cls.Options(**options)).export(_batches(channels, (21, 22), 0.5), classes, out, provenance)
    except Exception:
        pass  # refusing is right
    after = _snapshot(out)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    c.expect(not changed, "a second export into the same folder",
             "it to raise or refuse, leaving the first export's files unchanged", f"changed or removed: {changed[:5]}")


if __name__ == "__main__":  # one rank of check_distributed
    import sys

    _distributed_rank(sys.argv[1])
