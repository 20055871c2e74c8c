"""The paper's preprocessing (section 3.2) as an augkit ``Preprocessor``.

Stages, in order (each a small function below, testable on its own)::

    to_grayscale -> intensity_stats / normalise_intensity -> foreground_mask
    -> largest_component -> bounding_box -> crop -> denoise -> pad_to_square
    -> resize (anti-aliased) -> to_unit_range -> replicate_channels

Mask work (threshold, morphology, components) runs on a block-averaged copy whose long
side is 256-511 px; only the crop is taken from the full-resolution image. Morphology
sizes are given at a 256-px scale and scaled to the working resolution. Denoising sets
everything outside the convex hull of the (hole-filled) body to the background level: the
hull, not the raw mask, so dark anatomy inside the body (lung fields) is never blanked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi  # a hard dependency of scikit-image
from skimage import filters, measure, morphology
from skimage.transform import resize

import augkit

WORK_SIZE = 256  # long side (px) at which footprints are specified
CLIP_PERCENTILES = (0.5, 99.5)
MIN_BODY_FRACTION = 0.01  # a largest component smaller than this is not "the torso or head"
THRESHOLDS = {"otsu": filters.threshold_otsu, "li": filters.threshold_li}
THRESHOLDS["triangle"] = filters.threshold_triangle


@dataclass(frozen=True)
class Preset:
    """Per-modality constants; the paper applies "the same pipeline" to both, so they differ little.

    ``threshold_scale`` places the cut between the darkest (smoothed) level and the chosen
    threshold (1.0: the threshold itself). Chest X-rays use 0.5 because the lung fields are
    dark: at a plain Otsu cut they fall out of the torso mask and the torso can split.
    MRI backgrounds are near zero and large, so plain Otsu finds the head. ``radius_scale``
    multiplies ``footprint``: the scalp and skull are thin, so MRI opens less.
    """

    threshold_scale: float
    radius_scale: float


PRESETS = {
    "chest": Preset(threshold_scale=0.5, radius_scale=1.0),
    "mri": Preset(threshold_scale=1.0, radius_scale=2 / 3),
}


# --- 1. grayscale -----------------------------------------------------------------------


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) of any real dtype -> (H, W) float32, no NaN or inf.

    C = 3/4 is RGB(A): Rec. 709 luminance, alpha dropped; C = 1/2 is gray(+alpha). Integer
    values are kept as they are (no 8/16-bit rescaling: the z-score makes scale irrelevant).
    Non-finite values become the smallest finite value (0 if there is none).
    """
    image = np.asarray(image)
    if image.size == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise ValueError(f"image dtype must be real-valued, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] in (1, 2):
        gray = image[..., 0].astype(np.float32)
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = image[..., :3].astype(np.float32)
        gray = rgb @ np.array([0.2125, 0.7154, 0.0721], np.float32)  # skimage's rgb2gray weights
    elif image.ndim == 2:
        gray = image.astype(np.float32)
    else:
        raise ValueError(f"expected (H, W) or (H, W, C) with C in 1..4, got shape {image.shape}")
    finite = np.isfinite(gray)
    if not finite.all():
        fill = gray[finite].min() if finite.any() else 0.0
        gray = np.where(finite, gray, fill).astype(np.float32)
    return gray


# --- 2. intensity normalisation ---------------------------------------------------------


@dataclass(frozen=True)
class IntensityStats:
    low: float  # clip bounds (robust min / max)
    high: float
    mean: float  # of the clipped values
    std: float

    @property
    def flat(self) -> bool:  # a constant image: nothing to normalise
        return not self.std > 1e-6 * max(1.0, abs(self.mean))


def intensity_stats(gray: np.ndarray, percentiles: tuple[float, float] = CLIP_PERCENTILES) -> IntensityStats:
    """Robust statistics: clip to the given percentiles, then mean and std of what is left."""
    low, high = np.percentile(gray, percentiles)
    clipped = np.clip(gray, low, high)
    mean, std = clipped.mean(dtype=np.float64), clipped.std(dtype=np.float64)
    return IntensityStats(float(low), float(high), float(mean), float(std))


def normalise_intensity(gray: np.ndarray, stats: IntensityStats | None = None) -> np.ndarray:
    """Clip to robust bounds and z-score (mean ~ 0, std ~ 1); a constant image gives zeros."""
    stats = intensity_stats(gray) if stats is None else stats
    if stats.flat:
        return np.zeros(gray.shape, np.float32)
    return ((np.clip(gray, stats.low, stats.high) - stats.mean) / stats.std).astype(np.float32)


def background_level(stats: IntensityStats) -> float:
    """The normalised value of the darkest clipped intensity: what background becomes."""
    return 0.0 if stats.flat else (stats.low - stats.mean) / stats.std


# --- 3. threshold + morphology ----------------------------------------------------------


def foreground_mask(
    image: np.ndarray, radius: int, method: str = "otsu", threshold_scale: float = 1.0
) -> np.ndarray:
    """Bright-foreground mask: threshold the (2r+1)-box-smoothed image, then erosion (drops
    specks narrower than the footprint) -> median of the mask (majority vote: the
    "averaging", smooths the outline) -> dilation (restores the eroded border)."""
    smooth = ndi.uniform_filter(image, size=2 * radius + 1) if radius > 0 else image
    lowest, highest = float(smooth.min()), float(smooth.max())
    if highest - lowest <= 1e-6 * max(1.0, abs(highest)):
        return np.zeros(image.shape, bool)
    cut = lowest + threshold_scale * (float(THRESHOLDS[method](smooth)) - lowest)
    mask = smooth > cut
    if radius > 0:
        disk = morphology.disk(radius)
        mask = morphology.erosion(mask, disk)
        mask = filters.median(mask.astype(np.uint8), disk) > 0
        mask = morphology.dilation(mask, disk)
    return mask


# --- 4. largest component and its bounding box ------------------------------------------


def largest_component(mask: np.ndarray, min_fraction: float = MIN_BODY_FRACTION) -> np.ndarray | None:
    """The largest 8-connected component, holes filled; None if under ``min_fraction`` of the image.

    Filling first ranks components by the area their outline encloses, as OpenCV's largest
    external contour does: a head whose scalp ring is cut off from the brain by the dark
    skull is then one component, not a ring and a brain.
    """
    labels = measure.label(ndi.binary_fill_holes(mask), connectivity=2)
    if labels.max() == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    biggest = int(sizes.argmax()) + 1
    if sizes[biggest - 1] < min_fraction * mask.size:
        return None
    return labels == biggest


def bounding_box(mask: np.ndarray, margin: float = 0.0) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1), end-exclusive, grown by ``margin`` x the box's longer side."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    pad = math.ceil(margin * max(r1 - r0, c1 - c0))
    h, w = mask.shape
    return max(0, r0 - pad), min(h, r1 + pad), max(0, c0 - pad), min(w, c1 + pad)


def scale_box(box: tuple[int, ...], factor: int, shape: tuple[int, ...], work_shape: tuple[int, ...]):
    """A box on the block-averaged grid -> the same box on the full-resolution grid.

    A box reaching the working image's last row/column also takes the rows/columns that
    block averaging trimmed.
    """
    r0, r1, c0, c1 = box
    r1 = shape[0] if r1 == work_shape[0] else r1 * factor
    c1 = shape[1] if c1 == work_shape[1] else c1 * factor
    return r0 * factor, r1, c0 * factor, c1


# --- 5. denoise, pad, resize ------------------------------------------------------------


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Average non-overlapping factor x factor blocks (trailing partial blocks are dropped)."""
    if factor <= 1:
        return image
    h, w = image.shape[0] // factor * factor, image.shape[1] // factor * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def denoise(image: np.ndarray, body: np.ndarray | None, background: float, size: int = 3) -> np.ndarray:
    """Average with a size x size box filter, then set everything outside ``body`` to ``background``."""
    out = ndi.uniform_filter(image, size=size) if size > 1 else image.copy()
    if body is not None:
        out[~body] = background
    return out


def pad_to_square(image: np.ndarray, value: float) -> np.ndarray:
    """Pad the shorter axis on both sides (centred) so anatomy is not stretched."""
    h, w = image.shape
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    return np.pad(image, ((top, side - h - top), (left, side - w - left)), constant_values=value)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Anti-aliased bilinear resize of a square image to size x size."""
    return resize(image, (size, size), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)


# --- 6. generator range -----------------------------------------------------------------


def to_unit_range(image: np.ndarray, percentiles: tuple[float, float] = CLIP_PERCENTILES) -> np.ndarray:
    """Map robust min/max (percentiles) to [-1, 1] and clip; a flat image gives zeros."""
    low, high = np.percentile(image, percentiles)
    if not high - low > 1e-6:
        return np.zeros(image.shape, np.float32)
    out = 2 * (image - low) / (high - low) - 1
    return np.clip(out, -1, 1).astype(np.float32)


def replicate_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) -> (channels, H, W), the same plane repeated."""
    # np.repeat copies: a broadcast view would be read-only (torch.from_numpy warns on those)
    return np.repeat(image[None].astype(np.float32, copy=False), channels, axis=0)


# --- the plugin ------------------------------------------------------------------------


class PaperPreprocessor(augkit.Preprocessor):
    """Normalise, denoise, crop to the torso or head, pad square, resize: the paper's section 3.2."""

    class Options(augkit.Preprocessor.Options):
        image_size: int = Field(112, ge=16, le=4096, description="Output side in pixels (paper: 112).")
        channels: Literal[1, 3] = Field(1, description="Output channels; 3 repeats the gray plane.")
        modality: Literal["chest", "mri"] = Field(
            "chest", description="Threshold/morphology preset (PRESETS; the two differ only slightly)."
        )
        crop: bool = Field(True, description="Crop to the box of the largest foreground component.")
        denoise: bool = Field(
            True, description="Box-average the image; outside the body's hull, set the darkest level."
        )
        margin: float = Field(
            0.02, ge=0.0, le=0.5, description="Crop margin per side, a fraction of the box's longer side."
        )
        footprint: int = Field(
            3, ge=0, le=32, description="Morphology radius (px) at a 256-px long side; scaled with the image."
        )
        threshold: Literal["otsu", "li", "triangle"] = Field(
            "otsu", description="Foreground threshold method (scikit-image), applied to the smoothed image."
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        opts = self.options
        preset = PRESETS[opts.modality]
        gray = to_grayscale(image)  # (H, W) float32
        h, w = gray.shape

        # mask work at ~256 px: block averaging is exact area averaging, and cheap
        factor = max(1, min(max(h, w) // WORK_SIZE, h, w))
        work = block_mean(gray, factor)
        stats = intensity_stats(gray[::factor, ::factor])
        radius = round(opts.footprint * preset.radius_scale * max(work.shape) / WORK_SIZE)
        work = normalise_intensity(work, stats)
        mask = foreground_mask(work, radius, opts.threshold, preset.threshold_scale)
        body = largest_component(mask)

        box = (0, work.shape[0], 0, work.shape[1])
        if opts.crop and body is not None:
            box = bounding_box(body, opts.margin)
        r0, r1, c0, c1 = scale_box(box, factor, (h, w), work.shape)

        # the crop from full resolution, averaged down to >= 2x the output side
        region = gray[r0:r1, c0:c1]
        k = max(1, min(max(region.shape) // (2 * opts.image_size), *region.shape))
        region = normalise_intensity(block_mean(region, k), stats)
        background = background_level(stats)
        if opts.denoise:
            hull = None
            if body is not None:
                hull = morphology.convex_hull_image(body)[box[0] : box[1], box[2] : box[3]]
                hull = resize(hull, region.shape, order=0, anti_aliasing=False).astype(bool)
            region = denoise(region, hull, background)

        square = resize_square(pad_to_square(region, background), opts.image_size)
        return replicate_channels(to_unit_range(square), opts.channels)  # (C, S, S) in [-1, 1]
