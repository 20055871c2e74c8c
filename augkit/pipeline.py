"""augkit inside an existing pipeline: synthetic data as ``torch.utils.data.Dataset`` objects.

Items are MONAI-style dictionaries, so MONAI's dictionary transforms (``ScaleIntensityd``,
``RandRotated``, ...) and ``monai.data.DataLoader`` apply unchanged::

    {"image": Tensor (C, H, W) float32 in [0, 1], "label": int, "synthetic": bool}

* :class:`SyntheticFolder`: the images an exporter wrote (``manifest.csv`` + files), each
  read back by the exporter that writes its suffix;
* :class:`GeneratorDataset`: images drawn live from a trained generator, deterministic per
  index (shuffling or worker count never changes image ``i``);
* :class:`TensorDataset`: preprocessed real images (``augkit.LabeledImages``);
* :func:`mix`: real + synthetic at a given synthetic:real ratio.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from augkit.extension.registry import Registry, get_plugin_manager
from augkit.extension.roles import Exporter, Generator, LabeledImages
from augkit.extension.sampling import sample_checked
from augkit.outputs.manifest import read_manifest

Transform = Callable[[dict], dict]


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) / 2).clamp(0, 1)  # augkit's [-1, 1] -> the [0, 1] most pipelines expect


class TensorDataset(Dataset):
    """Preprocessed images (``LabeledImages``, values in [-1, 1]) as dictionaries."""

    def __init__(self, data: LabeledImages, transform: Transform | None = None, synthetic: bool = False):
        self.data, self.transform, self.synthetic = data, transform, synthetic
        self.classes = list(data.classes)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        item = {"image": _to_unit(self.data.images[i]), "label": int(self.data.labels[i]), "synthetic": self.synthetic}
        return self.transform(item) if self.transform else item


class SyntheticFolder(Dataset):
    """An exported synthetic folder (``manifest.csv`` beside the images) as dictionaries.

    Each file is read by the exporter that writes files of its suffix (``Exporter.suffix``
    and ``Exporter.read_image``, looked up among the installed exporters, or in ``registry``),
    so a folder of any exporter that can read its files back works. Labels follow ``classes``,
    by default the run's order from ``classes.json`` (else the names sorted).
    """

    def __init__(self, folder: Path | str, classes: Sequence[str] | None = None, transform: Transform | None = None,
                 *, registry: Registry | None = None):
        manifest = read_manifest(folder)
        self.folder, self.rows = manifest.folder, manifest.rows
        if classes is None:
            classes = manifest.classes  # the run's label order, written by augkit's exporters
        self.classes = list(classes) if classes is not None else sorted({r["class"] for r in self.rows})
        unknown = {r["class"] for r in self.rows} - set(self.classes)
        if unknown:
            raise ValueError(f"{self.folder / 'manifest.csv'}: classes {sorted(unknown)} are not in {self.classes}")
        readers = _readers(registry or get_plugin_manager()) if self.rows else []
        self._readers = [_reader_for(row["file"], readers) for row in self.rows]  # exporter classes: they pickle
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        image = torch.from_numpy(_channels_first(self._readers[i].read_image(self.folder / row["file"])))
        item = {"image": image, "label": self.classes.index(row["class"]), "synthetic": True}
        return self.transform(item) if self.transform else item


def _readers(registry: Registry) -> list[type[Exporter]]:
    """The installed exporters that read their files back, longest suffix first (a two-part suffix wins)."""
    found = [info.cls for info in registry.all() if info.role == "exporter"]
    base = Exporter.read_image.__func__
    found = [cls for cls in found if cls.suffix and getattr(cls.read_image, "__func__", cls.read_image) is not base]
    return sorted(found, key=lambda cls: -len(cls.suffix))


def _reader_for(file: str, readers: list[type[Exporter]]) -> type[Exporter]:
    name = file.lower()
    for cls in readers:
        if name.endswith(cls.suffix.lower()):
            return cls
    known = ", ".join(sorted({cls.suffix for cls in readers})) or "none"
    raise ValueError(f"no installed exporter reads {file!r} back (exporters with read_image read: {known})")


def _channels_first(x: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) -> (C, H, W) float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 2:
        return x[None]
    return x.transpose(2, 0, 1)


class GeneratorDataset(Dataset):
    """``counts[c]`` images of each class c, drawn live from a generator.

    Image ``i`` always comes from the same seed (``seed`` and ``i``), whatever the order in
    which a sampler asks for it, so a pipeline using it is as reproducible as one on files.
    """

    def __init__(self, generator: Generator, counts: Sequence[int], *, classes: Sequence[str] | None = None,
                 seed: int = 0, transform: Transform | None = None):
        self.generator, self.seed, self.transform = generator, seed, transform
        self.classes = list(classes or generator.classes)
        if len(counts) != len(self.classes) or any(n < 0 for n in counts):
            raise ValueError(f"counts {list(counts)}: give one count (0 or more) per class, in label order "
                             f"({len(self.classes)}: {', '.join(self.classes)})")
        self.labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        label = self.labels[i : i + 1]
        image = sample_checked(self.generator, label, seed=self.seed * 1_000_003 + i)[0]
        item = {"image": _to_unit(image), "label": int(label), "synthetic": True}
        return self.transform(item) if self.transform else item


def mix(real: Dataset, synthetic: Dataset, ratio: float, *, seed: int = 0) -> Dataset:
    """Real plus ``round(ratio * len(real))`` synthetic items (a seeded random subset).

    ``ratio`` is synthetic:real; it may exceed 1 as long as ``synthetic`` is large enough.
    """
    if ratio < 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    n = round(ratio * len(real))
    if n > len(synthetic):
        raise ValueError(f"ratio {ratio} needs {n} synthetic items but the synthetic set has {len(synthetic)}")
    order = torch.randperm(len(synthetic), generator=torch.Generator().manual_seed(seed))[:n]
    return ConcatDataset([real, Subset(synthetic, sorted(order.tolist()))])
