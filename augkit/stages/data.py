"""From a data source to preprocessed tensors: loading, skipping bad images, caching, splitting."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import secrets
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from augkit.outputs.files import atomic_save
from augkit.outputs.run_folder import OutputFolderError, make_folder
from augkit.extension.names import check_class_name, path_free
from augkit.extension.roles import DataSource, LabeledImages, Preprocessor, Sample
from augkit.outputs.progress import Progress, no_progress

log = logging.getLogger("augkit")

CACHE_FORMAT = "4"  # bump when the cached layout or preprocessing semantics change


class DataError(ValueError):
    """The data cannot be used (nothing readable, a split left empty, ...)."""


@dataclass
class Loaded:
    data: LabeledImages
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (sample key, reason)
    sources: list[str | None] = field(default_factory=list)  # the dataset's own split per image, if any
    cache_hit: bool = False
    cache_path: Path | None = None
    dropped_classes: list[str] = field(default_factory=list)  # classes of the source without a usable image
    blank: list[str] = field(default_factory=list)  # sample keys of kept images with one value in every pixel


# A fresh secret per process: patient-id hashes cannot be reversed by hashing guessed record
# numbers. Nothing depends on the hash values themselves (splits order patients by first
# appearance), so results do not change from one process to the next.
_SALT = secrets.token_bytes(16)


def anonymise_group(group: str) -> str:
    """Patient ids are kept only as secretly salted hashes: enough to group, useless to identify."""
    return hashlib.sha256(_SALT + group.encode()).hexdigest()[:16]


def cache_key(source_name: str, source: DataSource, prep_name: str, prep: Preprocessor) -> str:
    h = hashlib.sha256()
    for part in (CACHE_FORMAT, source_name, source.fingerprint(), prep_name, prep.options.model_dump_json()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


_worker_prep: Preprocessor | None = None


def _init_worker(prep: Preprocessor) -> None:
    global _worker_prep
    _worker_prep = prep
    torch.set_num_threads(1)  # one process per core: threads inside each would only fight


def prepare_one(sample: Sample, prep: Preprocessor | None = None) -> tuple[np.ndarray | None, str | None]:
    """Load and preprocess one sample: (image, None) or (None, the reason it is unusable)."""
    try:
        raw = sample.load()
        if isinstance(raw, np.ndarray) and raw.dtype.kind in "fc" and not np.isfinite(raw).all():
            raise ValueError("the image holds NaN or infinite values")  # before preprocessing can hide them
        image = np.array((prep or _worker_prep)(raw), dtype=np.float32)  # a private, writable copy
        if not np.isfinite(image).all():
            raise ValueError("preprocessing produced NaN or infinite values")
        return image, None
    except Exception as exc:  # any failure of one file is that file's problem, reported by its key
        return None, path_free(f"{type(exc).__name__}: {exc}")


def _prepared(samples: list[Sample], prep: Preprocessor, workers: int) -> Iterator[tuple[np.ndarray | None, str | None]]:
    if workers <= 1 or len(samples) < 64 or not picklable(samples[0], prep):
        if workers > 1 and len(samples) >= 64:
            log.info("preprocessing in one process: the data source's samples cannot be sent to worker processes")
        yield from (prepare_one(s, prep) for s in samples)
        return
    done = 0
    chunk = max(1, min(16, len(samples) // (4 * workers)))
    while done < len(samples):
        try:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(prep,)) as pool:
                for result in pool.map(prepare_one, samples[done:], chunksize=chunk):  # map keeps the order
                    yield result
                    done += 1
        except BrokenProcessPool:
            # a worker died (killed for memory, a crash in a decoder): find the file by trying the next
            # one alone; it is skipped if it kills its worker too, and the others carry on in a new pool
            yield _alone(samples[done], prep)
            done += 1
            chunk = 1  # near a killer file, one file per task: a death names its file


def _alone(sample: Sample, prep: Preprocessor) -> tuple[np.ndarray | None, str | None]:
    """``prepare_one`` in a worker of its own; a worker that dies is this file's reason to be skipped."""
    try:
        with ProcessPoolExecutor(1, initializer=_init_worker, initargs=(prep,)) as pool:
            return pool.submit(prepare_one, sample).result()
    except BrokenProcessPool:
        return None, "the process reading it died (killed for using too much memory, or a crash in the decoder)"


def picklable(*objects: object) -> bool:
    """Whether ``objects`` can be sent to worker processes (not a class of __main__ or a closure)."""
    try:
        pickle.dumps(objects)
        return True
    except Exception:
        return False


def _preprocess_all(source: DataSource, prep: Preprocessor, progress: Progress, strict: bool, workers: int) -> Loaded:
    with _data_errors():
        for name in source.classes:  # folder names, label_map, labels_csv, class_order: all end here
            check_class_name(name, "dataset class (a class folder, or a label_map / labels_csv / class_order entry)")
        samples = list(source.samples())
    images, labels, groups, sources, skipped, blank = [], [], [], [], [], []
    results = _prepared(samples, prep, workers)
    for sample, (image, problem) in zip(samples, progress(results, "preprocess", len(samples)), strict=True):
        image, problem = like_the_others(image, problem, images)
        if image is None:
            if strict:
                raise _strict_bad_image(sample.key, problem)
            log.warning("skipped %s: %s", sample.key, problem)
            skipped.append((sample.key, problem))
            continue
        if is_blank(image):
            blank.append(sample.key)
        images.append(torch.from_numpy(image))
        labels.append(sample.label)
        groups.append(anonymise_group(sample.group))
        sources.append(sample.meta.get("source_split"))
    if not images:
        raise DataError(f"no usable images: all {len(samples)} samples were skipped or the source yielded none")
    classes, labels, empty = _without_empty(list(source.classes), labels)
    if empty:
        if strict:
            raise _strict_empty(empty, classes)
        log.warning("%s", _empty_message(empty, classes))
    data = LabeledImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), classes, groups)
    return Loaded(data, skipped, sources, dropped_classes=empty, blank=blank)


def like_the_others(image: np.ndarray | None, problem: str | None, kept: list[torch.Tensor]
                    ) -> tuple[np.ndarray | None, str | None]:
    """``prepare_one``'s (image, problem), with a preprocessed shape unlike the kept images' as the problem."""
    if image is not None and kept and image.shape != tuple(kept[0].shape):
        return None, f"ValueError: preprocessed to shape {image.shape}, others are {tuple(kept[0].shape)}"
    return image, problem


def _empty_message(empty: list[str], classes: list[str]) -> str:
    return (f"class{'es' if len(empty) > 1 else ''} {', '.join(empty)} {'have' if len(empty) > 1 else 'has'} no "
            f"usable image: left out, the models learn {len(classes)} classes ({', '.join(classes)})")


def _strict_empty(empty: list[str], classes: list[str]) -> DataError:
    return DataError(f"{_empty_message(empty, classes)} (strict mode stops; remove the empty folder or add images)")


def _strict_bad_image(key: str, problem: str) -> DataError:
    return DataError(f"{key}: {problem} (strict mode stops at the first bad image)")


def _stop_if_strict(loaded: Loaded) -> None:
    """Strict mode's errors for data read from the cache: the first skipped file, else a class left out."""
    if loaded.skipped:
        raise _strict_bad_image(*loaded.skipped[0])
    if loaded.dropped_classes:
        raise _strict_empty(loaded.dropped_classes, loaded.data.classes)


def is_blank(image: np.ndarray) -> bool:
    """One value in every pixel (an all-black scan, a crop that removed everything)."""
    return bool(image.size) and bool((image == image.flat[0]).all())


def blank_note(loaded: Loaded) -> str | None:
    """One warning naming the kept images that preprocessing left blank, or None."""
    if not loaded.blank:
        return None
    n, shown = len(loaded.blank), ", ".join(loaded.blank[:5])
    return (f"{n} image{'s are' if n > 1 else ' is'} blank after preprocessing (one value in every pixel): {shown}"
            f"{f' and {n - 5} more' if n > 5 else ''}; kept. A blank image is usually a failed acquisition or export "
            "(remove the file: `augkit locate KEY --root DIR` finds it) or a threshold that removes everything "
            "(`augkit data --preview` shows the crop)")


def _without_empty(classes: list[str], labels: list[int]) -> tuple[list[str], list[int], list[str]]:
    """(classes that have images, labels renumbered to them, the empty classes)."""
    counts = np.bincount(labels, minlength=len(classes))
    if len(classes) - int((counts == 0).sum()) < 2 and (counts == 0).any():
        raise DataError(f"only {', '.join(c for c, n in zip(classes, counts) if n)} has usable images "
                        f"({', '.join(c for c, n in zip(classes, counts) if not n)}: none): a classifier needs at "
                        "least two classes")
    kept = [c for c, n in zip(classes, counts) if n]
    number = {old: new for new, old in enumerate(i for i, n in enumerate(counts) if n)}
    return kept, [number[y] for y in labels], [c for c, n in zip(classes, counts) if not n]


def load_and_preprocess(
    source: DataSource,
    prep: Preprocessor,
    *,
    source_name: str,
    prep_name: str,
    cache_dir: Path | None,
    progress: Progress = no_progress,
    strict: bool = False,
    workers: int | None = None,
) -> Loaded:
    """Preprocess every sample once; later calls with the same data and options read the cache."""
    path = None
    if cache_dir is not None:
        with _data_errors():
            path = Path(cache_dir) / f"{cache_key(source_name, source, prep_name, prep)}.pt"
        if path.exists():
            try:
                blob = torch.load(path, weights_only=True)
                data = LabeledImages(blob["images"], blob["labels"], blob["classes"], blob["groups"])
                cached = Loaded(data, [tuple(s) for s in blob["skipped"]], blob["sources"], cache_hit=True,
                                cache_path=path, dropped_classes=list(blob["dropped_classes"]), blank=list(blob["blank"]))
            except Exception as exc:  # emptied, cut short, another format: augkit's own file, made again
                log.warning("preprocess: the cache file %s cannot be read (%s); preprocessing again, and "
                            "writing it anew", path, type(exc).__name__)
            else:
                if strict:  # the cache holds what a lenient run kept: strict stops as it would have
                    _stop_if_strict(cached)
                log.info("preprocess: cache hit, %d images from %s", len(data), path)
                return cached
        try:  # before the work, not after it
            make_folder(path.parent, "cache_dir", "set cache_dir to a folder you can write to, or leave it unset "
                        "(<out>/.cache)")
        except OutputFolderError as exc:
            raise DataError(str(exc)) from None
    loaded = _preprocess_all(source, prep, progress, strict, workers or os.cpu_count() or 1)
    loaded.cache_path = path
    if path is not None:
        data = loaded.data
        blob = {
            "images": data.images,
            "labels": data.labels,
            "classes": data.classes,
            "groups": data.groups,
            "skipped": [list(s) for s in loaded.skipped],
            "sources": loaded.sources,
            "dropped_classes": loaded.dropped_classes,
            "blank": loaded.blank,
        }
        atomic_save(blob, path)
    return loaded


@contextmanager
def _data_errors():
    """A data source's ValueError / OSError is its account of what is wrong with the data."""
    try:
        yield
    except (ValueError, OSError) as exc:
        raise DataError(f"dataset: {path_free(str(exc)) if isinstance(exc, OSError) else exc}") from exc
