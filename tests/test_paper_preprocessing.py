"""The paper's preprocessing plugin: contract, robustness, each stage on its own."""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
from skimage import draw

from augkit_plugins.paper_preprocessing import PaperPreprocessor, register_preprocessors
from augkit_plugins.paper_preprocessing.pipeline import (
    bounding_box,
    foreground_mask,
    intensity_stats,
    largest_component,
    normalise_intensity,
    pad_to_square,
    replicate_channels,
    to_grayscale,
    to_unit_range,
)


def torso_image(shape=(400, 520), seed=0) -> np.ndarray:
    """A bright off-centre ellipse, a smaller blob far from it, specks and noise on dark."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, 15.0)
    rr, cc = draw.ellipse(250, 340, 110, 90, shape)  # the "torso": rows 140-360, cols 250-430
    img[rr, cc] = 190
    rr, cc = draw.disk((40, 40), 18, shape=shape)  # smaller component: must not win
    img[rr, cc] = 220
    for r, c in rng.integers(0, min(shape), size=(40, 2)):  # 2x2 specks: must be removed
        img[r : r + 2, c : c + 2] = 250
    img += rng.normal(0, 5, shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def check_output(out: np.ndarray, size: int = 112, channels: int = 1) -> None:
    assert out.shape == (channels, size, size)
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    assert out.min() >= -1 and out.max() <= 1


rng = np.random.default_rng(0)
INPUTS = {
    "uint8": rng.integers(0, 256, (64, 80), dtype=np.uint8),
    "uint16": rng.integers(0, 65536, (80, 64), dtype=np.uint16),
    "int16": rng.integers(-1024, 3000, (50, 50)).astype(np.int16),
    "float64": rng.random((70, 70)),
    "rgb": rng.integers(0, 256, (60, 90, 3), dtype=np.uint8),
    "rgba": rng.integers(0, 256, (60, 90, 4), dtype=np.uint8),
    "gray1": rng.integers(0, 256, (40, 40, 1), dtype=np.uint8),
    "odd": rng.random((37, 91)).astype(np.float32),
    "1x1": np.array([[7]], np.uint8),
    "1xN": rng.random((1, 300)),
    "constant": np.full((64, 64), 1000, np.uint16),
    "constant-rgba": np.full((30, 40, 4), 200, np.uint8),
    "zeros": np.zeros((50, 30)),
    "nan": np.where(rng.random((40, 40)) > 0.9, np.nan, rng.random((40, 40))),
    "large": torso_image((1024, 1024)),
}


@pytest.mark.parametrize("name", INPUTS)
def test_output_contract(name):
    check_output(PaperPreprocessor()(INPUTS[name]))


@pytest.mark.parametrize("name", ["constant", "constant-rgba", "1x1", "zeros"])
def test_flat_images_give_zeros(name):
    assert np.all(PaperPreprocessor()(INPUTS[name]) == 0)


def test_options_reach_the_output():
    options = dict(image_size=32, channels=3, modality="mri", crop=False, denoise=False)
    out = PaperPreprocessor(**options)(INPUTS["rgb"])
    check_output(out, size=32, channels=3)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])


def test_deterministic():
    image = torso_image()
    a, b = PaperPreprocessor()(image), PaperPreprocessor()(image.copy())
    assert np.array_equal(a, b)


def test_crop_finds_the_largest_component():
    out = PaperPreprocessor(margin=0.0)(torso_image())[0]
    bright = out > 0
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    # the torso is taller than wide: it spans (almost) all rows after padding to square
    assert rows[-1] - rows[0] >= 0.95 * 112
    assert cols[-1] - cols[0] >= 0.7 * 112
    assert bright.mean() > 0.5  # pi/4 * 90/110 ~ 0.64; the whole frame was ~0.16
    # and it is centred: the blob in the corner and the specks were ignored
    centre = np.argwhere(bright).mean(axis=0)
    assert np.all(np.abs(centre - 55.5) < 5)
    # background outside the body is the darkest value
    assert out[0, 0] == -1 and out[-1, -1] == -1


def test_no_crop_keeps_the_whole_frame():
    out = PaperPreprocessor(crop=False)(torso_image())[0]
    assert 0.1 < (out > 0).mean() < 0.3


def test_no_foreground_keeps_the_whole_image():
    noise = np.random.default_rng(3).normal(size=(100, 100))
    check_output(PaperPreprocessor()(noise))
    assert largest_component(np.zeros((10, 10), bool)) is None


def test_to_grayscale():
    rgba = np.zeros((4, 5, 4), np.uint16)
    rgba[..., 1] = 1000
    rgba[..., 3] = 65535  # alpha is ignored
    gray = to_grayscale(rgba)
    assert gray.shape == (4, 5) and gray.dtype == np.float32
    np.testing.assert_allclose(gray, 715.4, rtol=1e-5)
    assert np.isfinite(to_grayscale(np.array([[np.nan, np.inf], [1.0, 2.0]]))).all()
    with pytest.raises(ValueError):
        to_grayscale(np.zeros((2, 2, 5)))
    with pytest.raises(ValueError):
        to_grayscale(np.zeros((0, 4)))


def test_normalise_intensity():
    gray = np.random.default_rng(1).gamma(2.0, 300.0, (128, 128)).astype(np.float32)
    gray[0, :5] = 1e9  # outliers must not dominate
    out = normalise_intensity(gray)
    assert abs(out.mean()) < 1e-4 and abs(out.std() - 1) < 1e-3
    stats = intensity_stats(gray)
    assert stats.high < 1e9
    assert np.all(normalise_intensity(np.full((8, 8), 5.0)) == 0)


def test_foreground_mask_removes_specks():
    image = np.zeros((100, 100), np.float32)
    image[20:80, 30:70] = 1
    image[5, 5] = image[90, 90] = 1
    mask = foreground_mask(image, radius=2)
    assert not mask[5, 5] and not mask[90, 90] and mask[50, 50]
    assert bounding_box(mask) == (20, 80, 30, 70)
    assert bounding_box(mask, margin=0.1) == (14, 86, 24, 76)
    assert not foreground_mask(np.ones((10, 10), np.float32), radius=1).any()


def test_pad_unit_range_replicate():
    padded = pad_to_square(np.ones((2, 5)), value=-3)
    assert padded.shape == (5, 5) and padded[0, 0] == -3 and padded[2, 2] == 1
    mapped = to_unit_range(np.linspace(0, 10, 1000).reshape(10, 100))
    assert mapped.min() == -1 and mapped.max() == 1
    assert replicate_channels(np.zeros((3, 3)), 3).shape == (3, 3, 3)


def test_options_validation():
    with pytest.raises(pydantic.ValidationError):
        PaperPreprocessor(unknown=1)
    with pytest.raises(pydantic.ValidationError):
        PaperPreprocessor(channels=2)
    with pytest.raises(pydantic.ValidationError):
        PaperPreprocessor(image_size=8)
    with pytest.raises(pydantic.ValidationError):
        PaperPreprocessor(modality="ct")
    with pytest.raises(pydantic.ValidationError):
        PaperPreprocessor(margin=-0.1)
    for name, field in PaperPreprocessor.Options.model_fields.items():
        assert field.description, name


def test_registers_as_paper():
    registered = {}
    register_preprocessors(lambda name, cls: registered.update({name: cls}))
    assert registered == {"paper": PaperPreprocessor}
