"""A run, stage by stage. Each stage writes into the run folder; none overwrites another run."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import yaml

import augkit
from augkit import data as D
from augkit import metrics as M
from augkit import report
from augkit.interfaces import LabeledImages
from augkit.plugins import get_plugin_manager
from augkit.progress import Progress, no_progress
from augkit.recipe import ResolvedRecipe

log = logging.getLogger("augkit")


def run(resolved: ResolvedRecipe, out: Path | str = "runs", *, progress: Progress = no_progress) -> Path:
    """Run every stage of the recipe into a new folder under ``out``; return that folder."""
    recipe = resolved.recipe
    out = Path(out)
    run_dir = new_run_dir(out, recipe.name or "run")
    with _log_to(run_dir / "run.log"):
        timings: dict[str, float] = {}
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved.to_dict(), sort_keys=False), encoding="utf-8")
        _write_json(run_dir / "environment.json", environment())
        log.info("run folder %s", run_dir)

        with _timed(timings, "preprocess"):
            loaded = D.load_and_preprocess(
                resolved.build("dataset"),
                resolved.build("preprocessor"),
                source_name=recipe.dataset.name,
                prep_name=recipe.preprocessor.name,
                cache_dir=recipe.cache_dir or out / ".cache",
                progress=progress,
                strict=recipe.strict,
            )
        full = loaded.data
        if loaded.skipped:
            report.write_csv([{"sample": k, "reason": r} for k, r in loaded.skipped], run_dir / "skipped.csv")

        split = D.split_by_patient(
            full.labels.tolist(), full.groups, val=recipe.split.val, test=recipe.split.test, seed=recipe.seed
        )
        train, val, test = full.subset(split.train), full.subset(split.val), full.subset(split.test)
        _write_json(run_dir / "data.json", data_summary(full, {"train": train, "val": val, "test": test}, loaded))
        _write_json(run_dir / "splits.json", {k: getattr(split, k).tolist() for k in ("train", "val", "test")})

        with _timed(timings, "generator"):
            generator, checkpoint = train_generator(resolved, train, run_dir, progress)
        with _timed(timings, "sample"):
            synthetic = sample_synthetic(resolved, generator, checkpoint, train, run_dir, progress)
        with _timed(timings, "classifiers"):
            metrics = evaluate_regimes(resolved, train, val, test, synthetic, run_dir, progress)

        _write_json(run_dir / "metrics.json", metrics)
        report.write_csv(
            [{"regime": r, **{k: m[k] for k in ("accuracy", "precision", "recall", "f1")}} for r, m in metrics["regimes"].items()],
            run_dir / "metrics.csv",
        )
        report.write_results_md(metrics, run_dir / "results.md", test_counts=test.counts(), title=f"Results: {run_dir.name}")
        _write_json(run_dir / "timings.json", timings)
        log.info("done in %.0f s", sum(timings.values()))
    return run_dir


# -- stages ---------------------------------------------------------------------------------


def train_generator(resolved: ResolvedRecipe, train: LabeledImages, run_dir: Path, progress: Progress):
    recipe = resolved.recipe
    generator = resolved.build("generator")
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir()
    checkpoint = ckpt_dir / "generator.pt"
    total = getattr(generator.options, "iterations", None)
    rows = []
    for row in progress(generator.fit(train, seed=recipe.seed), "train generator", total):
        if len(row) > 1:  # rows with more than the step carry measurements
            rows.append(row)
        if row.get("step", 0) % recipe.checkpoint_every == 0:
            generator.save(checkpoint)
    generator.save(checkpoint)
    report.write_csv(rows, run_dir / "losses.csv")
    report.plot_losses(rows, run_dir / "losses.png", title="AC-GAN training", keys=("d_loss", "g_loss"))
    log.info("generator trained; checkpoint %s", checkpoint)
    return generator, checkpoint


def sample_synthetic(resolved, generator, checkpoint: Path, train: LabeledImages, run_dir: Path, progress) -> LabeledImages:
    recipe = resolved.recipe
    counts = D.synthetic_counts(train.counts(), recipe.synthetic.per_class, recipe.synthetic.multiplier)
    labels = D.labels_for(counts)
    size = recipe.synthetic.batch_size
    starts = list(range(0, len(labels), size))
    images = []

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        for b, start in enumerate(progress(starts, "sample", len(starts))):
            y = labels[start : start + size]
            seed = recipe.seed * 1_000_003 + b  # one seed per batch, recorded in the manifest
            x = generator.sample(y, seed=seed)
            images.append(x)
            yield x, y, seed

    provenance = {
        "generator": recipe.generator.name,
        "generator_version": getattr(generator, "version", "0"),
        "checkpoint_sha256": sha256_file(checkpoint),
        "recipe_sha256": hashlib.sha256(json.dumps(resolved.to_dict(), sort_keys=True).encode()).hexdigest(),
    }
    resolved.build("exporter").export(batches(), train.classes, run_dir / "synthetic", provenance)
    synthetic = LabeledImages(torch.cat(images), labels, train.classes)
    report.class_grids(synthetic.images, synthetic.labels, synthetic.classes, run_dir / "samples")
    log.info("sampled %d synthetic images (%s per class)", len(synthetic), counts[0])
    return synthetic


REGIME_DATA = {
    "real": lambda real, fake: real,
    "fake": lambda real, fake: fake,
    "fake+real": lambda real, fake: LabeledImages.concat([real, LabeledImages(fake.images, fake.labels, real.classes)]),
}


def evaluate_regimes(resolved, train, val, test, synthetic, run_dir: Path, progress) -> dict:
    recipe = resolved.recipe
    results, curves = {}, []
    for regime in recipe.evaluation.regimes:
        classifier = resolved.build("classifier")
        data = REGIME_DATA[regime](train, synthetic)
        total = getattr(classifier.options, "epochs", None)
        for row in progress(classifier.fit(data, val, seed=recipe.seed), f"classifier {regime}", total):
            curves.append({"regime": regime, **row})
        pred = classifier.predict_proba(test.images).argmax(1)
        cm = M.confusion_matrix(test.labels.numpy(), pred.numpy(), len(test.classes))
        results[regime] = M.from_confusion(cm, test.classes)
        log.info("%s: accuracy %.3f, macro F1 %.3f", regime, results[regime]["accuracy"], results[regime]["f1"])
    report.write_csv(curves, run_dir / "classifier_losses.csv")
    return {"classes": list(test.classes), "test_counts": test.counts(), "regimes": results}


# -- the run folder -------------------------------------------------------------------------


def new_run_dir(out: Path, name: str) -> Path:
    """A fresh folder ``out/<name>-<timestamp>[-k]``; never an existing one."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for k in range(1, 1000):
        path = out / (f"{name}-{stamp}" + (f"-{k}" if k > 1 else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {out}")


def environment() -> dict:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "augkit": augkit.__version__,
        "packages": {p: version(p) for p in ("torch", "torchvision", "timm", "monai", "numpy", "scikit-image", "pydantic")},
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "plugins": [i.as_dict() for i in get_plugin_manager().all()],
    }


def data_summary(full: LabeledImages, splits: dict[str, LabeledImages], loaded: D.Loaded) -> dict:
    return {
        "classes": full.classes,
        "images": len(full),
        "skipped": len(loaded.skipped),
        "cache_hit": loaded.cache_hit,
        "splits": {
            name: {"images": len(s), "patients": len(set(s.groups or [])), "per_class": dict(zip(s.classes, s.counts()))}
            for name, s in splits.items()
        },
    }


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(x):
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


@contextmanager
def _timed(timings: dict[str, float], stage: str):
    t = time.perf_counter()
    yield
    timings[stage] = round(time.perf_counter() - t, 3)


@contextmanager
def _log_to(path: Path):
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    previous = log.level
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(previous)
