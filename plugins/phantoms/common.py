"""What the two phantom data sources share: options, sample enumeration, seeding, finishing.

A phantom image is a pure function of (options, class index, image index): the loader
renders it on call, from generators seeded by ``np.random.SeedSequence``, so loading is
lazy, byte-for-byte reproducible and independent of the order in which images are loaded.
Anatomy is drawn from a per-patient generator, so the images of one patient look alike
(as real repeat images do) and a split that leaks patients is measurably optimistic.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from functools import lru_cache, partial
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator
from skimage.filters import gaussian

import augkit

RENDER_VERSION = 1  # bump whenever rendering changes, so cached preprocessed data is rebuilt


class PhantomOptions(augkit.DataSource.Options):
    """Options common to both phantoms; subclasses set ``class_names`` and ``counts``' default."""

    class_names: ClassVar[tuple[str, ...]] = ()

    counts: dict[str, int] = Field(description="Images per class; keys are exactly the class names.")
    image_size: int = Field(112, ge=32, le=1024, description="Side of the square images, in pixels.")
    noise: float = Field(0.05, ge=0.0, le=1.0, description="Std of additive gaussian noise (intensity in [0, 1]).")
    difficulty: float = Field(
        0.5, ge=0.0, le=1.0, description="0: obvious pathology, little anatomical variability; 1: subtle, varied."
    )
    images_per_patient: int = Field(2, ge=1, description="Consecutive images of one class that share a patient id.")
    seed: int = Field(0, ge=0, description="Seed of the whole data set: same options, same bytes.")

    @field_validator("counts")
    @classmethod
    def _known_classes(cls, counts: dict[str, int]) -> dict[str, int]:
        allowed = list(cls.class_names)
        if set(counts) != set(allowed):
            unknown = sorted(set(counts) - set(allowed))
            missing = [name for name in allowed if name not in counts]
            problems = ([f"unknown {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])
            raise ValueError(f"counts must give exactly the classes {allowed}: {', '.join(problems)}")
        too_small = {name: n for name, n in counts.items() if n < 1}
        if too_small:
            raise ValueError(f"counts must be >= 1, got {too_small}")
        return {name: counts[name] for name in allowed}  # fixed class order, whatever the input's


class PhantomSource(augkit.DataSource):
    """A procedurally rendered data set; subclasses provide ``name`` and ``render``."""

    name: ClassVar[str]
    Options = PhantomOptions
    options: PhantomOptions

    @property
    def classes(self) -> list[str]:
        return list(self.options.class_names)

    def samples(self) -> Iterator[augkit.Sample]:
        per_patient = self.options.images_per_patient
        first_patient = 0
        for label, class_name in enumerate(self.classes):
            n = self.options.counts[class_name]
            for index in range(n):
                patient = first_patient + index // per_patient
                yield augkit.Sample(
                    load=partial(self.load, label, index),
                    label=label,
                    group=f"p{patient:04d}",
                    key=f"{self.name}/{class_name}/{index:05d}",
                    meta={},
                )
            first_patient += -(-n // per_patient)

    def load(self, label: int, index: int) -> np.ndarray:
        """Render image ``index`` of class ``label``: (image_size, image_size) uint8."""
        o = self.options
        salt = zlib.crc32(self.name.encode())
        # The patient generator depends on the class-local patient index only, so changing
        # one class's count never changes another class's images.
        patient = np.random.default_rng(np.random.SeedSequence([o.seed, salt, 0, label, index // o.images_per_patient]))
        image = np.random.default_rng(np.random.SeedSequence([o.seed, salt, 1, label, index]))
        return self.render(self.classes[label], patient, image)

    def render(self, class_name: str, patient: np.random.Generator, image: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def fingerprint(self) -> str:
        return f"{self.name}/render-v{RENDER_VERSION}/{self.options.model_dump_json()}"


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    u, v = np.meshgrid(c, c)
    u.flags.writeable = v.flags.writeable = False
    return u, v


def coordinates(size: int, angle: float, shift: tuple[float, float], zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres in the anatomy's frame: [-1, 1] across the image, y pointing down.

    The anatomy is defined in this frame, so rotating, shifting and zooming the patient is
    a change of coordinates, not a resampling of the image.
    """
    u, v = _grid(size)
    c, s = np.cos(angle), np.sin(angle)
    u, v = u - shift[0], v - shift[1]
    return (c * u + s * v) / zoom, (c * v - s * u) / zoom


def ramp(signed: np.ndarray, width: float) -> np.ndarray:
    """0 -> 1 over ``width`` as ``signed`` (positive inside) crosses 0: a soft-edged mask."""
    return np.clip(signed / width + 0.5, 0.0, 1.0)


def smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Gaussian random field with unit std; ``sigma`` is a fraction of the image side."""
    field = gaussian(rng.standard_normal((size, size), dtype=np.float32), sigma * size, preserve_range=True)
    return field / (field.std() + 1e-8)


def finish(
    intensity: np.ndarray, rng: np.random.Generator, noise: float, blur_px: float, rician: bool = False
) -> np.ndarray:
    """Blur like a detector's point spread, add noise, quantise to uint8.

    ``rician``: MRI magnitude noise (gaussian in both channels, then the modulus), which
    leaves a noise floor in the background instead of clipping it to black.
    """
    size = intensity.shape[0]
    image = gaussian(intensity, blur_px * size / 112, preserve_range=True)
    if noise > 0:
        real = image + noise * rng.standard_normal(image.shape, dtype=np.float32)
        if rician:
            real = np.hypot(real, noise * rng.standard_normal(image.shape, dtype=np.float32))
        image = real
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
