"""A run, stage by stage. Each stage writes into the run folder; none overwrites another run."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import platform
import shutil
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
from augkit.selection import Scorer, train_judge, warnings_for

log = logging.getLogger("augkit")


def run(
    resolved: ResolvedRecipe, out: Path | str = "runs", *, progress: Progress = no_progress, resume: Path | None = None
) -> Path:
    """Run every stage of the recipe into a new folder under ``out``; return that folder.

    With ``resume`` (an interrupted run's folder, whose own ``recipe.yaml`` was loaded into
    ``resolved``), generator training continues from the last checkpoint in that folder.
    """
    recipe = resolved.recipe
    out = Path(out)
    run_dir = Path(resume) if resume else new_run_dir(out, recipe.name or "run")
    with _log_to(run_dir / "run.log"):
        timings: dict[str, float] = {}
        if not resume:
            (run_dir / "recipe.yaml").write_text(yaml.safe_dump(resolved.to_dict(), sort_keys=False), encoding="utf-8")
            _write_json(run_dir / "environment.json", environment())
        log.info("%s run folder %s", "resuming" if resume else "new", run_dir)

        with _timed(timings, "preprocess"):
            loaded = D.load_and_preprocess(
                resolved.build("dataset"),
                resolved.build("preprocessor"),
                source_name=recipe.dataset.name,
                prep_name=recipe.preprocessor.name,
                cache_dir=recipe.cache_dir or (run_dir.parent if resume else out) / ".cache",
                progress=progress,
                strict=recipe.strict,
                workers=recipe.workers,
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
            generator, checkpoint = train_generator(resolved, train, val, run_dir, progress, resume=bool(resume))
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


def train_generator(resolved: ResolvedRecipe, train: LabeledImages, val: LabeledImages, run_dir: Path, progress,
                    *, resume: bool = False):
    """Train with checkpoints; at each, score the generator and keep the best. Returns (generator, checkpoint)."""
    recipe = resolved.recipe
    cls, options = resolved.plugins["generator"]
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(exist_ok=True)
    last, best = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    rows: list[dict] = []
    scores: list[dict] = []
    if resume and last.exists():
        generator = cls.load(last)
        done = getattr(generator, "step", 0)
        rows = [r for r in report.read_csv(run_dir / "losses.csv") if r["step"] <= done]
        scores = [s for s in _read_json(run_dir / "selection.json", {}).get("scores", []) if s["step"] <= done]
        log.info("generator resumes at step %d from %s", done, last)
    else:
        generator = cls(options)

    scorer, judge_accuracy = None, None
    if recipe.selection.enabled:
        judge, judge_accuracy = train_judge(train, val, seed=recipe.seed, steps=recipe.selection.judge_steps)
        scorer = Scorer(judge, train, per_class=recipe.selection.per_class, seed=recipe.seed + 1)
        log.info("judge (a small CNN on real training data) recognises %.0f%% of real validation images",
                 100 * judge_accuracy)
    grid_labels = torch.arange(len(train.classes)).repeat_interleave(8)

    def checkpoint(step: int) -> None:
        generator.save(last)
        if scorer is not None:
            score = {"step": step, **scorer(generator)}
            if not scores or score["score"] > max(s["score"] for s in scores):
                generator.save(best)
            scores.append(score)
        report.image_grid(generator.sample(grid_labels, seed=recipe.seed), run_dir / "samples" / f"iter_{step:06d}.png",
                          title=f"iteration {step}: rows of 8 per class ({', '.join(train.classes)})")
        report.write_csv(rows, run_dir / "losses.csv")
        _write_json(run_dir / "selection.json", {"judge_val_accuracy": judge_accuracy, "scores": scores})

    (run_dir / "samples").mkdir(exist_ok=True)
    total = getattr(generator.options, "iterations", None)
    step = 0
    for row in progress(generator.fit(train, seed=recipe.seed), "train generator", total):
        step = row.get("step", step + 1)
        if len(row) > 1:  # rows with more than the step carry measurements
            rows.append(row)
        if step % recipe.checkpoint_every == 0:
            checkpoint(step)
    if step % recipe.checkpoint_every:
        checkpoint(step)
    report.plot_losses(rows, run_dir / "losses.png", title="generator training", keys=("d_loss", "g_loss"))
    for warning in warnings_for(scores):
        log.warning(warning)
    if scores:
        chosen = max(scores, key=lambda s: s["score"])
        log.info("using the checkpoint of iteration %d: conditional accuracy %.2f, diversity %.2f",
                 chosen["step"], chosen["conditional_accuracy"], chosen["diversity"])
        return cls.load(best), best
    return generator, last


def sample_synthetic(resolved, generator, checkpoint: Path, train: LabeledImages, run_dir: Path, progress) -> LabeledImages:
    recipe = resolved.recipe
    counts = D.synthetic_counts(train.counts(), recipe.synthetic.per_class, recipe.synthetic.multiplier)
    labels = D.labels_for(counts)
    size = recipe.synthetic.batch_size
    images = []

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, int]]:
        for x, y, seed in generate_batches(generator, labels, seed=recipe.seed, batch_size=size, progress=progress):
            images.append(x)
            yield x, y, seed

    provenance = {
        "generator": recipe.generator.name,
        "generator_version": getattr(generator, "version", "0"),
        "checkpoint_sha256": sha256_file(checkpoint),
        "recipe_sha256": hashlib.sha256(json.dumps(resolved.to_dict(), sort_keys=True).encode()).hexdigest(),
    }
    shutil.rmtree(run_dir / "synthetic", ignore_errors=True)  # a resumed run's partial export
    resolved.build("exporter").export(batches(), train.classes, run_dir / "synthetic", provenance)
    synthetic = LabeledImages(torch.cat(images), labels, train.classes)
    report.class_grids(synthetic.images, synthetic.labels, synthetic.classes, run_dir / "samples")
    log.info("sampled %d synthetic images (%s per class)", len(synthetic), counts[0])
    return synthetic


def generate_batches(generator, labels: torch.Tensor, *, seed: int, batch_size: int, progress: Progress = no_progress):
    """Yield (images, labels, batch_seed) batch by batch: constant memory, same seed -> same images."""
    starts = range(0, len(labels), batch_size)
    for b, start in enumerate(progress(starts, "sample", len(starts))):
        y = labels[start : start + batch_size]
        batch_seed = seed * 1_000_003 + b  # one seed per batch, recorded in the manifest
        yield generator.sample(y, seed=batch_seed), y, batch_seed


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


def _read_json(path: Path, default):
    return json.loads(path.read_text()) if path.exists() else default


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
