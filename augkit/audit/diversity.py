"""Intra-class diversity a weak feature space cannot fool: mean pairwise MS-SSIM within each class.

Odena et al. (2017, the AC-GAN paper) found their collapsed classes this way. The MS-SSIM of
two images (Wang et al. 2003; computed here as MONAI's ``compute_ms_ssim`` computes it,
without importing it into the core) is 1 when they are identical and
falls towards 0 as their structure differs at every scale. Over the pairs of one class (every
pair up to ``PAIRS``, random ones beyond),
``diversity = 1 - mean MS-SSIM``: 0 when the class is one image repeated. It is measured in
pixels, so it needs no trained network, and it is set against the same figure for real images
of the class: a synthetic class below ``COLLAPSED`` times the real figure is *collapsed*.

The images are first averaged over blocks down to about ``LAYOUT`` pixels a side (5 x 5 blocks
at 56 px, 11 x 11 at 112): what is compared is each image's layout, what a person sees at a
glance. At full resolution a class drawn as one blob, each copy with its own blotchy grain,
read 0.5-0.8x the real figure (MS-SSIM counts the grain as structure) while its grid showed
the same image sixteen times; on its layout it reads 0.2-0.4x. Real images with grain added
keep their figure and softened real images lose less of it than at full resolution
(``benchmarks/diversity_grain.py``, docs/generators.md).

The scales and window follow the compared size: as many of MS-SSIM's five scales (weights
renormalised) as MONAI accepts with an 11-pixel window, a smaller window below 22 px (at 11
px: two scales, 11 and 5 px, with a 5-pixel window). Images in [-1, 1] are compared as [0, 1].

A figure from a few dozen images moves with the draw (ten draws of 60 images from one model read
0.69-0.87x: docs/generators.md), so :func:`per_class` can also give a 95 % bootstrap interval for
the synthetic / real ratio over the synthetic images (``interval``: images resampled with
replacement, pairs of one image with itself left out; the real figure held fixed, the data the
generator is measured against). It needs every pair, so it is given for up to ``sqrt(2 PAIRS)``
(316) images a class.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

COLLAPSED = 0.5  # synthetic / real diversity below this: the class is collapsed
LAYOUT = 10  # pixels a side the images are averaged down to before they are compared
# every pair up to this many (random ones beyond): at about 10 px a pair costs microseconds, and 256 random
# pairs of the same 60 images moved a class's ratio to the real figure by up to 0.13 with the pair seed alone
# (docs/generators.md)
PAIRS = 50_000
BOOTSTRAPS = 1000  # resamples for the interval on a class's ratio
_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al.'s five scales


@functools.cache
def settings(side: int) -> tuple[int, tuple[float, ...]]:
    """(window, scale weights) for images ``side`` pixels wide."""
    half = side // 2
    kernel = 11 if side >= 22 else max(3, half if half % 2 else half - 1)  # odd
    scales = 1
    for n in range(2, len(_WEIGHTS) + 1):  # MONAI's own size check for n weights
        if side // max(1, n - 1) ** 2 > kernel - 1 and side >> (n - 1) >= kernel:
            scales = n
    weights = _WEIGHTS[:scales]
    return kernel, tuple(w / sum(weights) for w in weights)


def _window(kernel: int, sigma: float = 1.5) -> Tensor:
    x = torch.arange(kernel, dtype=torch.float32) - (kernel - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _ssim_and_cs(a: Tensor, b: Tensor, window: Tensor, k1: float = 0.01, k2: float = 0.03) -> tuple[Tensor, Tensor]:
    """Per image SSIM and its contrast-structure term, data range 1, over valid windows (as MONAI)."""
    channels = a.shape[1]
    w = window.expand(channels, 1, *window.shape).to(a)
    blur = lambda t: F.conv2d(t, w, groups=channels)  # noqa: E731
    n = window.numel()
    mu_a, mu_b = blur(a), blur(b)
    var_a = (blur(a * a) - mu_a**2) * n / (n - 1)
    var_b = (blur(b * b) - mu_b**2) * n / (n - 1)
    cov = (blur(a * b) - mu_a * mu_b) * n / (n - 1)
    c1, c2 = k1**2, k2**2
    cs = (2 * cov + c2) / (var_a + var_b + c2)
    ssim = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs
    return ssim.flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(a: Tensor, b: Tensor) -> Tensor:
    """MS-SSIM of each pair ``(a[i], b[i])`` of images in [-1, 1]: (N,)."""
    kernel, weights = settings(min(a.shape[-2:]))
    a, b = ((t.float().clamp(-1, 1) + 1) / 2 for t in (a, b))
    window = _window(kernel)
    terms = []
    for i in range(len(weights)):
        ssim, cs = _ssim_and_cs(a, b, window)
        terms.append(F.relu(ssim if i == len(weights) - 1 else cs))
        a, b = F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)
    return torch.prod(torch.stack(terms) ** torch.tensor(weights)[:, None], 0)


def _pairs(n: int, most: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Up to ``most`` distinct unordered pairs of n items: all of them when they are few, else random ones."""
    i, j = torch.triu_indices(n, n, offset=1)
    if len(i) > most:
        pick = torch.randperm(len(i), generator=gen)[:most]
        i, j = i[pick], j[pick]
    return i, j


def layout(images: Tensor, side: int | None = LAYOUT) -> Tensor:
    """``images`` averaged over k x k blocks, k the largest whole factor leaving at least ``side`` pixels a
    side (None or 1: unchanged)."""
    k = max(1, min(images.shape[-2:]) // side) if side else 1
    return F.avg_pool2d(images.float(), k) if k > 1 else images


def _pair_values(images: Tensor, pairs: int, seed: int, side: int | None) -> tuple[Tensor, Tensor, Tensor]:
    """(i, j, 1 - MS-SSIM of each pair (i, j)) over up to ``pairs`` pairs of ``images``."""
    images = layout(images, side)
    i, j = _pairs(len(images), pairs, torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        values = torch.cat([ms_ssim(images[i[k:k + 512]], images[j[k:k + 512]]) for k in range(0, len(i), 512)])
    return i, j, 1 - values


def diversity(images: Tensor, *, pairs: int = PAIRS, seed: int = 0, side: int | None = LAYOUT) -> float | None:
    """``1 - mean MS-SSIM`` over up to ``pairs`` pairs of ``images``, averaged down to about ``side`` pixels
    (None: at full resolution); None for fewer than two images."""
    if len(images) < 2:
        return None
    return float(_pair_values(images, pairs, seed, side)[2].mean())


def bootstrap(n: int, i: Tensor, j: Tensor, values: Tensor, *, resamples: int = BOOTSTRAPS,
              seed: int = 0) -> Tensor | None:
    """The mean pair value over ``resamples`` bootstrap resamples of the ``n`` images (every pair given by
    ``i``, ``j``, ``values``): each resample draws n images with replacement and averages its pairs of
    two different images (a U-statistic's bootstrap; a resample that drew one image n times has no such
    pair and is drawn again). None unless every pair is given."""
    if n < 3 or len(values) != n * (n - 1) // 2:
        return None
    full = torch.zeros(n, n, dtype=torch.float64)
    full[i, j] = values.double()
    full[j, i] = values.double()
    gen = torch.Generator().manual_seed(seed)
    means = []
    chunk = max(1, 2_000_000 // (n * n))  # resamples at a time: at most about 16 MB of pair values
    done = 0
    while done < resamples:
        idx = torch.randint(0, n, (min(chunk, resamples - done), n), generator=gen)
        idx = idx[(idx != idx[:, :1]).any(1)]  # at least two different images (n = 3: 1 in 9 is not)
        sub = full[idx[:, :, None], idx[:, None, :]]  # (b, n, n); a pair of one image with itself is 0
        distinct = (idx[:, :, None] != idx[:, None, :]).sum((1, 2))
        means.append(sub.sum((1, 2)) / distinct)
        done += len(idx)
    return torch.cat(means)


def per_class(synthetic: Tensor, synthetic_labels: Tensor, real: Tensor, real_labels: Tensor, classes: list[str], *,
              pairs: int = PAIRS, seed: int = 0, real_figures: list[float | None] | None = None,
              interval: bool = False) -> dict[str, dict]:
    """Per class: synthetic and real diversity, their ratio and whether the class is collapsed.

    ``real_figures``: the real images' diversity per class, already computed (a scorer measures
    them once); else from ``real``. A class without two images on either side has ratio None.
    ``interval``: also ``ratio_interval``, the ratio's 95 % bootstrap interval over the synthetic
    images ([low, high]; None where it cannot be given: see :func:`bootstrap`).
    """
    out = {}
    for c, name in enumerate(classes):
        real_c = real_figures[c] if real_figures is not None else diversity(real[real_labels == c], pairs=pairs,
                                                                            seed=seed + c)
        images = synthetic[synthetic_labels == c]
        syn_c, means = None, None
        if len(images) >= 2:
            i, j, values = _pair_values(images, pairs, seed + c, LAYOUT)
            syn_c = float(values.mean())
            if interval and real_c:
                means = bootstrap(len(images), i, j, values, seed=seed + c)
        ratio = None if syn_c is None or not real_c else syn_c / real_c
        out[name] = {"synthetic": syn_c, "real": real_c, "ratio": ratio,
                     "collapsed": ratio is not None and ratio < COLLAPSED}
        if interval:
            out[name]["ratio_interval"] = None if means is None else \
                [float(q) / real_c for q in torch.quantile(means, torch.tensor([0.025, 0.975], dtype=means.dtype))]
    return out


def collapsed(figures: dict[str, dict]) -> list[str]:
    """The collapsed classes of :func:`per_class`'s figures."""
    return [name for name, f in figures.items() if f["collapsed"]]


def warnings_for(figures: dict[str, dict], where: str) -> list[str]:
    """One warning per collapsed class, naming it and both figures."""
    return [f"{where}: class {name} is collapsed: its images are {f['ratio']:.2f}x as varied as real ones "
            f"(1 - MS-SSIM between pairs' layouts {f['synthetic']:.3f}, real {f['real']:.3f}); the generator repeats a few "
            "looks" for name, f in figures.items() if f["collapsed"]]
