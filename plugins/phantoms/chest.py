"""``chest-phantom``: PA chest radiographs, normal / bacterial / viral pneumonia.

The image is a sum of densities (bright = dense, as on film) in the patient's frame:
x grows to the image right, which in a PA view is the patient's *left* (heart side),
y grows downwards. ``xl`` below is the lateral coordinate of one lung (``side * x``).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from augkit_plugins.phantoms.common import PhantomOptions, PhantomSource, coordinates, finish, ramp, smooth_noise

CLASSES = ("normal", "bacteria", "virus")
RIGHT, LEFT = -1, 1  # the patient's side, as the sign of x


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, angle: float = 0.0):
    """1 - normalised squared radius of a rotated ellipse (positive inside)."""
    c, s = np.cos(angle), np.sin(angle)
    dx, dy = x - cx, y - cy
    return 1.0 - ((c * dx + s * dy) / rx) ** 2 - ((c * dy - s * dx) / ry) ** 2


def _radial_lines(xl, y, hx, hy, n, phase, rng_twist):
    """Lines fanning out of a point: vessels from the hilum, bronchi in consolidated lung."""
    r = np.hypot(xl - hx, y - hy)
    phi = np.arctan2(y - hy, xl - hx)
    wave = np.cos(n * phi + phase + rng_twist[0] * np.sin(3 * phi + rng_twist[1]) + 6.0 * r * rng_twist[2])
    return np.clip(wave, 0.0, 1.0) ** 8, r


def render_chest(
    size: int, pathology: str, patient: np.random.Generator, image: np.random.Generator, difficulty: float, noise: float
) -> np.ndarray:
    var = 0.5 + difficulty  # anatomical and acquisition variability
    p = lambda scale: scale * var * patient.standard_normal()  # noqa: E731

    # --- the patient's anatomy
    body_w = 0.86 + p(0.03)
    lung_cx, lung_cy = 0.37 + p(0.015), 0.0 + p(0.02)
    lung_rx, lung_ry = 0.30 * (1 + p(0.05)), 0.68 * (1 + p(0.04))
    dome = {RIGHT: 0.30 + p(0.03)}  # the right hemidiaphragm sits higher
    dome[LEFT] = dome[RIGHT] + 0.05 + p(0.02)
    heart_x, heart_y = 0.12 + p(0.02), 0.24 + p(0.02)
    heart_rx, heart_ry = 0.33 * (1 + p(0.07)), 0.26 * (1 + p(0.05))
    rib_gap, rib_y0 = 0.125 * (1 + p(0.04)), -0.70 + p(0.02)
    fissure = lung_cy - 0.02 + p(0.03)
    twist = patient.normal(0.0, 1.0, (2, 3))

    # --- this exposure
    angle = np.deg2rad(2.0 * var * image.standard_normal())
    shift = tuple(0.03 * var * image.standard_normal(2))
    zoom = 1.0 + 0.03 * var * image.standard_normal()
    x, y = coordinates(size, angle, shift, zoom)
    ax = np.abs(x)

    # --- soft tissue: torso, shoulders, mediastinum and heart
    wall = body_w * (1.0 - 0.1 * (y - 0.35) ** 2)  # the chest wall, widest at the lung bases
    body = ramp(wall - ax, 0.06)
    shoulders = sum(ramp(_ellipse(x, y, s * 0.86, -0.9, 0.22, 0.25), 0.4) for s in (RIGHT, LEFT))
    body = np.maximum(body, shoulders)
    humeri = sum(ramp(_ellipse(x, y, s * 0.9, -0.78, 0.1, 0.13), 0.5) for s in (RIGHT, LEFT))
    media_w = 0.085 + 0.05 * np.clip(y + 0.6, 0.0, 1.0)
    mediastinum = ramp(media_w - np.abs(x - 0.01), 0.04) * ramp(0.6 - y, 0.1)
    heart = ramp(_ellipse(x, y, heart_x, heart_y, heart_rx, heart_ry, np.deg2rad(-25)), 0.25)
    aorta = ramp(_ellipse(x, y, 0.09, -0.30, 0.07, 0.06), 0.3)
    solid = np.maximum.reduce([mediastinum, heart, aorta]) * ramp(dome[LEFT] + 0.05 - y, 0.1)

    # --- lungs: a medially flattened ellipse cut by the domes of the diaphragm
    lungs = np.zeros_like(x)
    lung_of = {}
    for side in (RIGHT, LEFT):
        xl = side * x
        dx, dy = (xl - lung_cx) / lung_rx, (y - lung_cy) / lung_ry
        inside = 1.0 - np.where(dx < 0, np.abs(dx) ** 3, dx**2) - dy**2
        base = dome[side] + 0.22 * ((xl - 0.30) / 0.33) ** 2
        lung = ramp(inside, 0.1) * ramp(base - y, 0.03) * (1.0 - solid)
        lung_of[side] = lung
        lungs += lung

    # --- bones
    curve = y - (-0.25 * ax + 0.75 * ax**2) - rib_y0
    k = np.clip(np.round(curve / rib_gap), 0, 9)
    posterior = ramp(0.024 - np.abs(curve - k * rib_gap), 0.025) * ramp(curve + 0.05, 0.05)
    front = y - 0.32 * (0.75 - ax) - rib_y0 - 0.1
    k = np.clip(np.round(front / (1.6 * rib_gap)), 0, 5)
    anterior = ramp(0.025 - np.abs(front - k * 1.6 * rib_gap), 0.02) * ramp(ax - 0.2, 0.1)
    cage = ramp(wall - 0.05 - ax, 0.04) * ramp(ax - 0.04, 0.04) * ramp(dome[LEFT] + 0.2 - y, 0.1)
    ribs = (posterior + 0.5 * anterior) * cage
    clavicles = ramp(0.028 - np.abs(y + 0.60 + 0.30 * ax - 0.15 * ax**2), 0.025) * ramp(0.7 - ax, 0.05)
    spine = ramp(0.05 - np.abs(x), 0.03) * (0.8 + 0.2 * np.cos(2 * np.pi * (y - rib_y0) / rib_gap))

    # --- vessels fanning out of the hila
    vessels = np.zeros_like(x)
    for side, tw in zip((RIGHT, LEFT), twist):
        lines, r = _radial_lines(side * x, y, 0.16, -0.02, 11, tw[0], tw)
        vessels += lines * np.exp(-r / 0.25) * lung_of[side]
    hila = sum(np.exp(-((side * x - 0.17) ** 2 + (y + 0.02) ** 2) / 0.006) for side in (RIGHT, LEFT))

    # --- pathology: fluid and cells take the place of air, so the lung loses its darkness
    strength = 1.0 - 0.7 * difficulty
    filled = np.zeros_like(x)
    if pathology == "bacteria":
        filled = 0.9 * strength * _lobar_consolidation(x, y, lung_of, fissure, patient, image, difficulty)
    elif pathology == "virus":
        filled = 0.7 * strength * _interstitial(x, y, image, size, difficulty)

    gas = ramp(_ellipse(x, y, 0.3, dome[LEFT] + 0.14, 0.1, 0.06), 0.4) * ramp(dome[LEFT] + 0.14 - y, 0.02)
    density = (
        0.58 * body
        + 0.04 * solid
        + 0.06 * spine
        + 0.12 * humeri
        - 0.34 * lungs * (1.0 - np.clip(filled, 0.0, 0.95))
        + 0.05 * lungs * np.clip(y + 0.2, 0.0, 1.0)
        + 0.06 * lungs * np.exp(-((ax - 0.15) ** 2) / 0.02)  # hila and the vessels' trunks
        + 0.075 * ribs
        + 0.14 * clavicles
        + 0.10 * hila
        + 0.12 * vessels
        - 0.15 * gas
    )
    gain, gamma = 1.2 * (1.0 + 0.08 * var * image.standard_normal()), np.exp(0.12 * var * image.standard_normal())
    film = np.clip(gain * density + 0.04, 0.0, 1.0) ** gamma
    return finish(film.astype(np.float32), image, noise, blur_px=0.7)


def _lobar_consolidation(x, y, lung_of, fissure, patient, image, difficulty):
    """Dense, fairly homogeneous opacity filling part of one lobe, with air bronchograms."""
    side = patient.choice([RIGHT, LEFT])
    lobes = ["upper", "middle", "lower"] if side == RIGHT else ["upper", "lower"]
    lobe = lobes[patient.integers(len(lobes))]
    xl = side * x
    if lobe == "upper":
        region = ramp(fissure + (0.0 if side == RIGHT else 0.1) - y, 0.03)
    elif lobe == "middle":
        region = ramp(y - fissure, 0.03) * ramp(0.45 - xl, 0.15)
    else:
        region = ramp(y - fissure - 0.05, 0.15)  # the basal segments fill the lower zone
    size = x.shape[0]
    extent = 1.0 - 0.9 * difficulty + image.uniform(0.0, 0.6)
    patch = ramp(smooth_noise(image, size, 0.07) + extent, 0.5)
    texture = 1.0 + 0.08 * smooth_noise(image, size, 0.03)
    consolidated = region * lung_of[side] * patch  # one lobe of one lung
    bronchi, r = _radial_lines(xl, y, 0.16, -0.02, 9, image.uniform(0, 2 * np.pi), image.normal(0, 1, 3))
    return consolidated * texture * (1.0 - 0.2 * bronchi * ramp(r - 0.15, 0.1))


def _interstitial(x, y, image, size, difficulty):
    """Bilateral, patchy and reticular faint opacities, perihilar and basal."""
    zone = 0.6 + 0.4 * np.exp(-((np.abs(x) - 0.2) ** 2) / 0.05) + 0.3 * np.clip(y, 0.0, 1.0)
    net = ramp(0.3 - np.abs(smooth_noise(image, size, 0.012)), 0.25)
    patches = np.clip(smooth_noise(image, size, 0.025) - 0.4 * difficulty, 0.0, None)
    return np.clip(zone * (0.45 * net + 0.8 * patches + 0.2), 0.0, 1.0)


class ChestPhantom(PhantomSource):
    """Embedded PA chest radiographs: ``normal``, ``bacteria`` (lobar consolidation) and
    ``virus`` (bilateral interstitial opacities, the scarce minority)."""

    name = "chest-phantom"

    class Options(PhantomOptions):
        class_names = CLASSES
        counts: dict[str, int] = Field(
            default_factory=lambda: {"normal": 120, "bacteria": 120, "virus": 30},
            description="Images per class (normal, bacteria, virus); virus is the scarce minority by default.",
        )

    def render(self, class_name: str, patient: np.random.Generator, image: np.random.Generator) -> np.ndarray:
        o = self.options
        return render_chest(o.image_size, class_name, patient, image, o.difficulty, o.noise)
