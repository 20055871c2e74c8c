"""The audit's metrics: fidelity and diversity of feature sets, nearest-neighbour distances, data copying.

Pure functions of tensors: no extractor, no files. Frechet distance, KID and precision /
recall / density / coverage (Naeem et al. 2020) compare two feature sets; ``nearest`` gives
each query's distance to its nearest reference row; ``data_copying`` is Meehan et al.
(2020)'s C_T.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats as sps
from scipy.cluster.vq import kmeans2
from torch import Tensor

# -- fidelity and diversity metrics ------------------------------------------------------------


def frechet_distance(x: Tensor, y: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D), (M, D).

    The trace term tr sqrt(S1 S2) is the nuclear norm of A B^T with S1 = A^T A, S2 = B^T B
    (A, B the centred features over sqrt(n - 1)): exact, and stable when N, M < D.
    """
    x, y = x.double(), y.double()
    mu = x.mean(0) - y.mean(0)
    a = (x - x.mean(0)) / math.sqrt(max(len(x) - 1, 1))
    b = (y - y.mean(0)) / math.sqrt(max(len(y) - 1, 1))
    cross = torch.linalg.svdvals(a @ b.T).sum()
    value = mu.dot(mu) + (a * a).sum() + (b * b).sum() - 2 * cross
    return max(float(value), 0.0)


def kid(x: Tensor, y: Tensor) -> float:
    """Kernel inception distance: unbiased MMD^2 with the kernel (x.y / D + 1)^3."""
    x, y = x.double(), y.double()
    d, n, m = x.shape[1], len(x), len(y)
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    sxx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    syy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(sxx + syy - 2 * kxy.mean())


def _kth_radius(x: Tensor, k: int) -> Tensor:
    """Distance from each row to its k-th nearest other row."""
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the row itself is at distance 0


def prdc(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) with k nearest neighbours."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    d = torch.cdist(real, fake)  # (R, F)
    inside_real = d <= r_real[:, None]  # fake j inside real i's ball
    return {
        "precision": float(inside_real.any(0).double().mean()),
        "recall": float((d <= r_fake[None, :]).any(1).double().mean()),
        "density": float(inside_real.sum(0).double().mean() / k),
        "coverage": float((d.min(1).values <= r_real).double().mean()),
    }


def fidelity(reference: Tensor, other: Tensor, k: int) -> dict[str, float | None]:
    out: dict[str, float | None] = {"fd": frechet_distance(reference, other), "kid": kid(reference, other)}
    if min(len(reference), len(other)) > k:
        out.update(prdc(reference, other, k))
    else:
        out.update(dict.fromkeys(("precision", "recall", "density", "coverage")))
    return out


# -- distances -------------------------------------------------------------------------------


def nearest(queries: Tensor, reference: Tensor, *, exclude_self: bool = False, chunk: int = 512) -> tuple[Tensor, Tensor]:
    """Per query row, the distance to and index of the nearest reference row (RMS over dimensions)."""
    dists, index = [], []
    scale = math.sqrt(queries.shape[1])
    reference = reference.double()  # float64: an exact copy must come out at 0, not at rounding noise
    for start in range(0, len(queries), chunk):
        d = torch.cdist(queries[start : start + chunk].double(), reference)
        if exclude_self:
            rows = torch.arange(start, min(start + chunk, len(queries)))
            d[rows - start, rows] = math.inf
        v, i = d.min(1)
        dists.append(v / scale)
        index.append(i)
    return torch.cat(dists).float(), torch.cat(index)


def nearest_mirrored(images: Tensor, reference: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per image, the nearest ``reference`` row (flattened pixels) to it or to its left-right mirror:
    (distance, index, whether the mirror was nearer)."""
    d, i = nearest(flat(images), reference)
    dm, im = nearest(flat(mirror(images)), reference)
    mirrored = dm < d
    return torch.where(mirrored, dm, d), torch.where(mirrored, im, i), mirrored


def flat(images: Tensor) -> Tensor:
    """(N, ...) images as (N, pixels) float rows."""
    return images.reshape(len(images), -1).float()


def mirror(images: Tensor) -> Tensor:
    """Each image flipped left to right."""
    return images.flip(-1)


def quantiles(d: Tensor) -> dict[str, float] | None:
    """The minimum, 5 % quantile and median of a set of distances (None when there are none)."""
    if not len(d):
        return None
    q = torch.quantile(d.double(), torch.tensor([0.0, 0.05, 0.5], dtype=torch.double))
    return {"min": float(q[0]), "p05": float(q[1]), "median": float(q[2])}


def data_copying(train: Tensor, heldout: Tensor, synthetic: Tensor, *, cells: int, seed: int,
                 min_per_cell: int = 3) -> dict:
    """Meehan et al. (2020)'s C_T: a test-mass-weighted mean of per-cell Mann-Whitney Z scores.

    Cells: k-means on the training features. Within a cell, the distances to the nearest
    training point of synthetic (Q) and held-out (P) points are compared; Z < 0 when Q is
    closer than P. Cells with fewer than ``min_per_cell`` of either are left out.
    """
    centroids, _ = kmeans2(train.double().numpy(), cells, seed=seed, minit="++")
    centroids = torch.from_numpy(centroids)
    cell_of = lambda x: torch.cdist(x.double(), centroids).argmin(1)  # noqa: E731
    d_p, _ = nearest(heldout, train)
    d_q, _ = nearest(synthetic, train)
    c_p, c_q = cell_of(heldout), cell_of(synthetic)
    z_scores, weights = [], []
    for j in range(len(centroids)):
        p, q = d_p[c_p == j].numpy(), d_q[c_q == j].numpy()
        if len(p) < min_per_cell or len(q) < min_per_cell:
            continue
        u = sps.mannwhitneyu(q, p, alternative="two-sided").statistic  # pairs with q > p (+ ties / 2)
        m, n = len(q), len(p)
        z_scores.append((u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12))
        weights.append(len(p) / len(heldout))
    if not weights:
        return {"c_t": None, "cells": 0, "note": f"no cell holds {min_per_cell}+ synthetic and held-out images"}
    c_t = float(np.dot(weights, z_scores) / sum(weights))
    return {"c_t": c_t, "cells": len(weights), "cell_z": [round(float(z), 3) for z in z_scores]}
