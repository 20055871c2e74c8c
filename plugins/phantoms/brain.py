"""``brain-phantom``: axial T1-weighted (contrast-enhanced) MRI slices, tumour / no tumour.

The slice is at the level of the lateral ventricles' bodies. Coordinates: x to the image
right, y downwards (anterior at the top). ``bx, by`` are normalised so that the brain's
outline is roughly the unit circle. A tumour pushes the anatomy around it away (mass
effect), which moves the midline and squeezes the nearby ventricle.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from augkit_plugins.phantoms.common import PhantomOptions, PhantomSource, coordinates, finish, ramp

CLASSES = ("tumor", "no_tumor")

# T1 intensities in [0, 1]
FAT, BONE, MARROW, CSF, GREY, DEEP_GREY, WHITE = 0.8, 0.06, 0.35, 0.08, 0.42, 0.52, 0.7
RIM, NECROSIS, SOLID, OEDEMA = 0.97, 0.18, 0.88, 0.34


def _blob(dx: np.ndarray, dy: np.ndarray, radius: float, lumps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Distance from a centre, in units of a lumpy radius (< 1 inside)."""
    theta = np.arctan2(dy, dx)
    amplitudes, phases = lumps
    lumpy = 1.0 + sum(a * np.sin(k * theta + ph) for k, (a, ph) in enumerate(zip(amplitudes, phases), start=2))
    return np.hypot(dx, dy) / (radius * lumpy)


def render_brain(
    size: int, pathology: str, patient: np.random.Generator, image: np.random.Generator, difficulty: float, noise: float
) -> np.ndarray:
    var = 0.5 + difficulty
    p = lambda scale: scale * var * patient.standard_normal()  # noqa: E731

    # --- the patient's anatomy
    head_rx, head_ry = 0.70 * (1 + p(0.04)), 0.86 * (1 + p(0.03))
    egg = 0.07 + p(0.02)  # heads are a little wider at the back
    scalp, skull = 0.07 * (1 + p(0.15)), 0.06 * (1 + p(0.15))
    folds, fold_phase = patient.integers(22, 30), patient.uniform(0, 2 * np.pi, 5)
    ventricles = 1.0 + p(0.15)  # larger with age
    cortex = 0.065 * (1 + p(0.1))

    # --- this slice and acquisition
    angle = np.deg2rad(4.0 * var * image.standard_normal())
    shift = tuple(0.04 * var * image.standard_normal(2))
    zoom = 1.0 + 0.04 * var * image.standard_normal()
    ventricles *= 1.0 + 0.08 * image.standard_normal()
    x, y = coordinates(size, angle, shift, zoom)

    rho = np.hypot(x / (head_rx * (1.0 + egg * y)), y / head_ry)  # 1 at the scalp's surface
    inner = 1.0 - scalp - skull  # the brain's surface
    w = 2.0 / (size * head_rx)  # one pixel, in rho units: the width of soft edges
    bx, by = x / (head_rx * inner), y / (head_ry * inner)

    strength = 1.0 - 0.65 * difficulty
    tumour = None
    if pathology == "tumor":
        tumour = _tumour(patient, image, difficulty)
        bx, by = _mass_effect(bx, by, tumour)

    # --- brain: cortex with gyri and sulci around white matter
    theta = np.arctan2(by, bx)
    depth = 1.0 - np.hypot(bx, by)  # 0 at the brain's surface
    # gyri: irregularly spaced, curving folds; white matter reaches into each gyrus' crown
    phase = folds * theta + fold_phase[0] + 2.0 * np.sin(3 * theta + fold_phase[1])
    phase = phase + np.sin(7 * theta + fold_phase[2]) + 10.0 * depth * np.sin(2 * theta + fold_phase[3])
    # a sulcus is a line of CSF running inwards from the surface; grey matter is a ribbon
    # of even thickness along the pia, i.e. along the surface and both banks of each sulcus
    sulcal_depth = 0.15 + 0.08 * np.sin(5 * theta + fold_phase[4])
    across = np.abs((phase + 0.5 * np.pi) % (2 * np.pi) - np.pi) / folds * (1.0 - depth)
    to_sulcus = np.hypot(across, np.clip(depth - sulcal_depth, 0.0, None))
    to_pia = np.minimum(np.clip(depth, 0.0, None), to_sulcus)
    white = ramp(to_pia - cortex, 0.03)
    sulci = ramp(0.012 - to_sulcus, 0.03)
    midline = ramp(0.025 - np.abs(bx), 0.03) * ramp(np.abs(by + 0.06) - 0.52, 0.05)

    deep = 0.0
    for s in (-1, 1):
        deep = np.maximum(deep, ramp(1 - ((bx - s * 0.21) / 0.08) ** 2 - ((by + 0.22) / 0.12) ** 2, 0.4))  # caudate
        deep = np.maximum(deep, ramp(1 - ((bx - s * 0.13) / 0.1) ** 2 - ((by - 0.13) / 0.15) ** 2, 0.4))  # thalamus
        deep = np.maximum(deep, ramp(1 - ((bx - s * 0.36) / 0.07) ** 2 - ((by + 0.01) / 0.2) ** 2, 0.4))  # putamen

    # lateral ventricles: two tubes, close at the bodies, diverging into frontal and occipital horns
    vent = 0.0
    along = by - 0.04
    for s in (-1, 1):
        centre = 0.075 + 0.6 * along**2 + 0.05 * along
        half = ventricles * (0.032 + 0.045 * (along / 0.38) ** 2 + 0.015 * along)
        tube = ramp(half - np.abs(bx - s * centre), 0.04) * ramp(0.38 * ventricles**0.5 - np.abs(along), 0.06)
        vent = np.maximum(vent, tube)

    brain_i = GREY + (WHITE - GREY) * white
    brain_i = brain_i + (DEEP_GREY - brain_i) * deep
    csf = np.maximum.reduce([sulci, midline, vent])
    brain_i = brain_i + (CSF - brain_i) * csf

    if tumour is not None:
        brain_i = _paint_tumour(brain_i, white, x / (head_rx * inner), y / (head_ry * inner), tumour, strength)

    # --- head: scalp fat, skull (dark cortical bone, brighter marrow), a rim of CSF
    in_brain = ramp(inner - 0.015 - rho, w)
    in_skull = ramp(inner - rho, w)
    in_head = ramp(1.0 - rho, w)
    marrow = ramp(skull * 0.3 - np.abs(rho - inner - skull * 0.5), w)
    in_scalp = ramp(rho - inner - skull, w)
    head = in_head * (in_scalp * FAT + (1.0 - in_scalp) * (BONE + (MARROW - BONE) * marrow))
    slice_ = head + (CSF - head) * in_skull
    slice_ = slice_ + (brain_i - slice_) * in_brain

    bias = 1.0 + 0.08 * var * (image.uniform(-1, 1) * x + image.uniform(-1, 1) * y + image.uniform(-1, 1) * x * y)
    slice_ = (slice_ * bias * (1.0 + 0.06 * var * image.standard_normal())).astype(np.float32)
    return finish(slice_, image, noise, blur_px=0.6, rician=True)


def _tumour(patient: np.random.Generator, image: np.random.Generator, difficulty: float) -> dict:
    while True:  # somewhere in a hemisphere, clear of the midline and the cortex's edge
        cx, cy = patient.uniform(-0.62, 0.62), patient.uniform(-0.62, 0.62)
        if np.hypot(cx, cy) < 0.62 and abs(cx) > 0.15:
            break
    radius = (0.14 + 0.12 * patient.uniform()) * (1.0 - 0.5 * difficulty) * (1.0 + 0.1 * image.standard_normal())
    return {
        "centre": (cx + 0.02 * image.standard_normal(), cy + 0.02 * image.standard_normal()),
        "radius": radius,
        "ring": patient.uniform() < 0.65,  # ring-enhancing (necrotic core) or solid
        "oedema": 1.7 + 0.6 * patient.uniform(),
        "shape": (patient.normal(0.0, 0.08, 3), patient.uniform(0, 2 * np.pi, 3)),
        "halo": (patient.normal(0.0, 0.15, 3), patient.uniform(0, 2 * np.pi, 3)),
    }


def _mass_effect(bx: np.ndarray, by: np.ndarray, tumour: dict) -> tuple[np.ndarray, np.ndarray]:
    """Where to read the normal anatomy from: pixels near the mass show what was closer to it."""
    cx, cy = tumour["centre"]
    reach = 2.6 * tumour["radius"]
    dx, dy = bx - cx, by - cy
    squeeze = 1.0 - 0.6 * np.exp(-(dx**2 + dy**2) / reach**2)  # monotone in radius: no folds
    return cx + dx * squeeze, cy + dy * squeeze


def _paint_tumour(brain_i, white, bx, by, tumour, strength):
    cx, cy = tumour["centre"]
    dx, dy = bx - cx, by - cy
    d = _blob(dx, dy, tumour["radius"], tumour["shape"])
    halo = _blob(dx, dy, tumour["radius"] * tumour["oedema"], tumour["halo"])
    oedema = ramp(1.0 - halo, 0.3) * (0.35 + 0.65 * white)  # oedema tracks the white matter
    brain_i = brain_i + strength * (OEDEMA - brain_i) * oedema
    if tumour["ring"]:
        mass_i = NECROSIS + (RIM - NECROSIS) * ramp(d - 0.68, 0.15)
    else:
        mass_i = SOLID - 0.1 * ramp(0.5 - d, 0.3)
    return brain_i + strength * (mass_i - brain_i) * ramp(1.0 - d, 0.12)


class BrainPhantom(PhantomSource):
    """Embedded axial brain MRI slices: ``tumor`` (an enhancing mass with oedema and mass
    effect) and ``no_tumor``."""

    name = "brain-phantom"

    class Options(PhantomOptions):
        class_names = CLASSES
        counts: dict[str, int] = Field(
            default_factory=lambda: {"tumor": 100, "no_tumor": 100},
            description="Images per class (tumor, no_tumor).",
        )

    def render(self, class_name: str, patient: np.random.Generator, image: np.random.Generator) -> np.ndarray:
        o = self.options
        return render_brain(o.image_size, class_name, patient, image, o.difficulty, o.noise)
