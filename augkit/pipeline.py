"""augkit inside an existing pipeline: synthetic data as ``torch.utils.data.Dataset`` objects.

Items are MONAI-style dictionaries, so MONAI's dictionary transforms (``ScaleIntensityd``,
``RandRotated``, ...) and ``monai.data.DataLoader`` apply unchanged::

    {"image": Tensor (C, H, W) float32 in [0, 1], "label": int, "synthetic": bool}

* :class:`SyntheticFolder`: the images an exporter wrote (``manifest.csv`` + files);
* :class:`GeneratorDataset`: images drawn live from a trained generator, deterministic per
  index (shuffling or worker count never changes image ``i``);
* :class:`TensorDataset`: preprocessed real images (``augkit.LabeledImages``);
* :func:`mix`: real + synthetic at a given synthetic:real ratio.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from augkit.extension.roles import Generator, LabeledImages

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

    PNG files are read with Pillow (8 or 16 bit); NIfTI (``.nii``/``.nii.gz``) with nibabel
    and DICOM (``.dcm``) with pydicom, when those exporters wrote the folder. Labels follow
    ``classes``, by default the run's order from ``classes.json`` (else the names sorted).
    """

    def __init__(self, folder: Path | str, classes: Sequence[str] | None = None, transform: Transform | None = None):
        self.folder = Path(folder)
        manifest = self.folder / "manifest.csv"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found: give a folder written by an augkit exporter")
        with open(manifest, newline="") as f:
            self.rows = list(csv.DictReader(f))
        order = self.folder / "classes.json"  # the run's label order, written by augkit's exporters
        if classes is None and order.is_file():
            classes = json.loads(order.read_text())
        self.classes = list(classes) if classes is not None else sorted({r["class"] for r in self.rows})
        unknown = {r["class"] for r in self.rows} - set(self.classes)
        if unknown:
            raise ValueError(f"{manifest}: classes {sorted(unknown)} are not in {self.classes}")
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        image = torch.from_numpy(_read(self.folder / row["file"]))
        item = {"image": image, "label": self.classes.index(row["class"]), "synthetic": True}
        return self.transform(item) if self.transform else item


def _read(path: Path) -> np.ndarray:
    """(C, H, W) float32 in [0, 1]."""
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel

        x = np.asarray(nibabel.load(str(path)).dataobj, dtype=np.float32).squeeze()
        x = np.rot90(x)  # back from the (x, y) voxel order of the file to image rows and columns
    elif name.endswith(".dcm"):
        import pydicom

        ds = pydicom.dcmread(path)
        x = ds.pixel_array.astype(np.float32) / float(2 ** int(ds.BitsStored) - 1)
    else:
        from PIL import Image

        with Image.open(path) as im:
            x = np.asarray(im, dtype=np.float32)
        x = x / (65535.0 if x.max() > 255 else 255.0)
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
        self.labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(counts)])
        self.classes = list(classes or getattr(generator, "classes", None) or range(len(counts)))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        label = self.labels[i : i + 1]
        image = self.generator.sample(label, seed=self.seed * 1_000_003 + i)[0]
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
