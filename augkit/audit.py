"""Is the synthetic data good, and is it safe? Fidelity, diversity, label faithfulness, memorisation.

Everything is measured in a feature space given by a feature-extractor plugin (default: a
classifier trained on the real training split only) and, for copies, in pixel space too.

Fidelity and diversity (overall and per class): Frechet distance, KID, and precision /
recall / density / coverage (Naeem et al. 2020, k nearest neighbours). Each comes with a
*real-vs-real floor*: the same metric between the reference (training) images and an
equally large set of real images the generator never saw (the held-out set, or, without
one, the other half of the reference). A synthetic set is "as good as real" when its
figure reaches the floor. Means and standard deviations are over ``repeats`` random 80 %
subsets of the compared sets (synthetic images drawn with the real comparator's class mix).

Label faithfulness: the real-trained classifier labels each synthetic image; the confusion
of requested vs recognised class sits beside the same classifier's accuracy on real held-out
images.

Memorisation: each synthetic image's distance to its nearest training image (flip-invariant:
the image and its mirror are both compared), in pixel space (RMS over pixels) and in feature
space, against the same distances of held-out real images. An image is a *near copy* when
either distance is below ``copy_margin`` x the ``copy_quantile`` quantile of the held-out
distances. The data-copying statistic C_T (Meehan et al. 2020) compares, cell by cell of a
k-means partition of the training features, synthetic vs held-out distances to the training
set (Mann-Whitney Z): well below 0 (say < -3) means the generator copies, well above 0 means
its samples are farther from the training data than new real images are.
"""

from __future__ import annotations

import logging
import math
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats as sps
from scipy.cluster.vq import kmeans2
from torch import Tensor

from augkit.extension.roles import FeatureExtractor, LabeledImages, SyntheticBatch

log = logging.getLogger("augkit")

FIDELITY = ("fd", "kid", "precision", "recall", "density", "coverage")
LOWER_IS_BETTER = {"fd", "kid"}


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


def _flat(images: Tensor) -> Tensor:
    return images.reshape(len(images), -1).float()


def _mirror(images: Tensor) -> Tensor:
    return images.flip(-1)


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


# -- the audit -------------------------------------------------------------------------------


@dataclass
class Screen:
    """Per synthetic image: requested and recognised class, nearest-training distances, flags."""

    labels: Tensor
    recognised: Tensor | None
    pixel_distance: Tensor
    feature_distance: Tensor
    nearest_train: Tensor  # index into the reference set (pixel space)
    mirrored: Tensor  # bool: the nearest match was the mirrored image
    flags: list[tuple[str, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @staticmethod
    def concat(parts: list[Screen]) -> Screen:
        rec = None if parts[0].recognised is None else torch.cat([p.recognised for p in parts])
        return Screen(torch.cat([p.labels for p in parts]), rec, torch.cat([p.pixel_distance for p in parts]),
                      torch.cat([p.feature_distance for p in parts]), torch.cat([p.nearest_train for p in parts]),
                      torch.cat([p.mirrored for p in parts]), [f for p in parts for f in p.flags])


@dataclass
class AuditSettings:
    k: int = 5
    repeats: int = 10
    copy_quantile: float = 0.01
    copy_margin: float = 0.5
    cells: int | None = None  # data-copying cells; default: held-out images / 20, 1 .. 10
    seed: int = 0


class Auditor:
    """Fitted once on the real data; then screens synthetic images and summarises the audit.

    ``reference``: the generator's training images. ``heldout``: real images the generator
    never saw (None: leave-one-out distances within the reference stand in for memorisation,
    and half of the reference serves as the fidelity floor's comparator).
    """

    def __init__(self, extractor: FeatureExtractor, reference: LabeledImages, heldout: LabeledImages | None,
                 settings: AuditSettings = AuditSettings()):
        self.extractor, self.reference, self.heldout, self.s = extractor, reference, heldout, settings
        self.ref_feats = extractor.features(reference.images).float()
        self.ref_pixels = _flat(reference.images)
        if heldout is not None and len(heldout):
            self.held_feats = extractor.features(heldout.images).float()
            held_pix, _, _ = self._pixel_nearest(heldout.images)
            held_feat, _ = self._feature_nearest(heldout.images, self.held_feats)
            self.calibration = "held-out real images"
        else:  # leave-one-out within the reference
            self.held_feats = None
            held_pix, _ = nearest(self.ref_pixels, self.ref_pixels, exclude_self=True)
            held_feat, _ = nearest(self.ref_feats, self.ref_feats, exclude_self=True)
            self.calibration = "leave-one-out distances within the reference images (no held-out set given)"
        self.held_pixel_distance, self.held_feature_distance = held_pix, held_feat
        q = settings.copy_quantile
        self.threshold = {
            "pixel": settings.copy_margin * float(torch.quantile(held_pix.double(), q)),
            "feature": settings.copy_margin * float(torch.quantile(held_feat.double(), q)),
        }
        self.heldout_accuracy = None
        if heldout is not None and len(heldout):
            proba = extractor.predict_proba(heldout.images)
            if proba is not None:
                pred = proba.argmax(1)
                recalls = [(pred[heldout.labels == c] == c).float().mean().item()
                           for c in range(len(heldout.classes)) if (heldout.labels == c).any()]
                self.heldout_accuracy = {"accuracy": float((pred == heldout.labels).float().mean()),
                                         "balanced_accuracy": sum(recalls) / len(recalls)}

    def _pixel_nearest(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        d, i = nearest(_flat(images), self.ref_pixels)
        dm, im = nearest(_flat(_mirror(images)), self.ref_pixels)
        mirrored = dm < d
        return torch.where(mirrored, dm, d), torch.where(mirrored, im, i), mirrored

    def _feature_nearest(self, images: Tensor, feats: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feats = self.extractor.features(images).float() if feats is None else feats
        d, _ = nearest(feats, self.ref_feats)
        dm, _ = nearest(self.extractor.features(_mirror(images)).float(), self.ref_feats)
        return torch.minimum(d, dm), feats

    def screen(self, images: Tensor, labels: Tensor) -> tuple[Screen, Tensor]:
        """Flag each image: ``near_copy`` (pixel or feature space), ``unfaithful`` (recognised as another class).

        Returns the screen and the images' features.
        """
        pix, idx, mirrored = self._pixel_nearest(images)
        feat, feats = self._feature_nearest(images)
        proba = self.extractor.predict_proba(images) if len(images) else None
        recognised = None if proba is None else proba.argmax(1)
        copy = (pix < self.threshold["pixel"]) | (feat < self.threshold["feature"])
        flags = []
        for i in range(len(images)):
            f = ("near_copy",) if copy[i] else ()
            if recognised is not None and recognised[i] != labels[i]:
                f += ("unfaithful",)
            flags.append(f)
        return Screen(labels.clone(), recognised, pix, feat, idx, mirrored, flags), feats

    # -- summaries --------------------------------------------------------------------------

    def _repeat(self, reference: Tensor, compare: Tensor, n: int, gen: torch.Generator) -> dict[str, dict]:
        """Mean and std of every fidelity metric over random 80 % subsets (size n) of ``compare``."""
        values: dict[str, list[float]] = {m: [] for m in FIDELITY}
        for _ in range(self.s.repeats):
            pick = torch.randperm(len(compare), generator=gen)[:n]
            for m, v in fidelity(reference, compare[pick], self.s.k).items():
                if v is not None:
                    values[m].append(v)
        return {m: ({"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0}
                    if v else None) for m, v in values.items()}

    def fidelity(self, syn_feats: Tensor, syn_labels: Tensor) -> dict:
        """Overall and per-class fidelity of the synthetic features, each beside its real-vs-real floor."""
        gen = torch.Generator().manual_seed(self.s.seed)
        classes = self.reference.classes
        ref_feats, ref_labels = self.ref_feats, self.reference.labels
        if self.held_feats is not None:
            comp_feats, comp_labels = self.held_feats, self.heldout.labels
            floor = "held-out real images vs the training images"
        else:  # split the reference in two halves, per class
            perm = torch.randperm(len(ref_labels), generator=gen)
            half = torch.zeros(len(ref_labels), dtype=torch.bool)
            for c in range(len(classes)):
                members = perm[ref_labels[perm] == c]
                half[members[: len(members) // 2]] = True
            comp_feats, comp_labels = ref_feats[half], ref_labels[half]
            ref_feats, ref_labels = ref_feats[~half], ref_labels[~half]
            floor = "one half of the reference images vs the other half"
        out = {"floor": floor, "overall": None, "per_class": {}}

        # overall: synthetic drawn with the comparator's class mix, as many as the comparator holds
        per_class_comp = torch.bincount(comp_labels, minlength=len(classes))
        per_class_syn = torch.bincount(syn_labels, minlength=len(classes))
        scale = min(1.0, min(((per_class_syn[c] / per_class_comp[c]).item() for c in range(len(classes))
                              if per_class_comp[c] > 0), default=1.0))
        take = [int(per_class_comp[c].item() * scale) for c in range(len(classes))]
        syn_pick = torch.cat([torch.nonzero(syn_labels == c).flatten()[torch.randperm(int(per_class_syn[c]), generator=gen)[:t]]
                              for c, t in enumerate(take)])
        comp_pick = torch.cat([torch.nonzero(comp_labels == c).flatten()[:t] for c, t in enumerate(take)])
        out["overall"] = self._pair(ref_feats, comp_feats[comp_pick], syn_feats[syn_pick], gen)
        for c, name in enumerate(classes):
            ref_c = ref_feats[ref_labels == c]
            comp_c, syn_c = comp_feats[comp_labels == c], syn_feats[syn_labels == c]
            n = min(len(comp_c), len(syn_c))
            if n <= self.s.k + 1 or len(ref_c) <= self.s.k + 1:
                out["per_class"][name] = {"n": n, "note": f"too few images (need more than {self.s.k + 1} in each set)"}
                continue
            syn_c = syn_c[torch.randperm(len(syn_c), generator=gen)[:n]]
            out["per_class"][name] = self._pair(ref_c, comp_c[:n], syn_c, gen)
        return out

    def _pair(self, ref: Tensor, comp: Tensor, syn: Tensor, gen: torch.Generator) -> dict:
        n = len(comp)
        m = max(self.s.k + 2, int(0.8 * n))
        if n <= self.s.k + 1:
            return {"n": n, "note": f"too few images (need more than {self.s.k + 1})"}
        return {"n": m, "reference": len(ref), "synthetic": self._repeat(ref, syn, m, gen),
                "real_floor": self._repeat(ref, comp, m, gen)}

    def summary(self, screen: Screen, syn_feats: Tensor, dropped: dict[str, int] | None = None) -> dict:
        """The audit as ``audit.json`` holds it."""
        classes = self.reference.classes
        k = len(classes)
        out: dict = {
            "feature_space": self.extractor.describe(),
            "sizes": {"reference": len(self.reference), "heldout": 0 if self.heldout is None else len(self.heldout),
                      "synthetic": len(screen)},
            "settings": {"k": self.s.k, "repeats": self.s.repeats, "copy_quantile": self.s.copy_quantile,
                         "copy_margin": self.s.copy_margin},
            "fidelity": self.fidelity(syn_feats, screen.labels),
        }
        if screen.recognised is not None:
            cm = torch.zeros(k, k, dtype=torch.long)
            cm.index_put_((screen.labels, screen.recognised), torch.ones(len(screen), dtype=torch.long), accumulate=True)
            rates = {name: (float(cm[c, c] / cm[c].sum()) if cm[c].sum() else None) for c, name in enumerate(classes)}
            out["faithfulness"] = {
                "confusion": cm.tolist(),  # rows: requested class, columns: recognised class
                "per_class": rates,
                "overall": float(cm.diagonal().sum() / max(int(cm.sum()), 1)),
                "real_heldout": self.heldout_accuracy,
            }
        else:
            out["faithfulness"] = None
        copies = torch.tensor([("near_copy" in f) for f in screen.flags], dtype=torch.bool)
        held_flag = ((self.held_pixel_distance < self.threshold["pixel"])
                     | (self.held_feature_distance < self.threshold["feature"])).float().mean()
        mem = {
            "calibration": self.calibration,
            "thresholds": self.threshold,
            "near_copies": int(copies.sum()),
            "near_copies_per_class": {name: int(copies[screen.labels == c].sum()) for c, name in enumerate(classes)},
            "near_copy_rate": float(copies.float().mean()) if len(screen) else 0.0,
            "heldout_flag_rate": float(held_flag),
            "pixel_distance": _quantiles(screen.pixel_distance),
            "heldout_pixel_distance": _quantiles(self.held_pixel_distance),
            "feature_distance": _quantiles(screen.feature_distance),
            "heldout_feature_distance": _quantiles(self.held_feature_distance),
        }
        if self.held_feats is not None and len(self.held_feats) >= 6:
            cells = self.s.cells or int(np.clip(len(self.held_feats) // 20, 1, 10))
            mem["data_copying"] = data_copying(self.ref_feats, self.held_feats, syn_feats, cells=cells, seed=self.s.seed)
        else:
            mem["data_copying"] = {"c_t": None, "note": "needs a held-out real set"}
        out["memorisation"] = mem
        out["dropped"] = dropped or {}
        return out


def _quantiles(d: Tensor) -> dict[str, float] | None:
    if not len(d):
        return None
    q = torch.quantile(d.double(), torch.tensor([0.0, 0.05, 0.5], dtype=torch.double))
    return {"min": float(q[0]), "p05": float(q[1]), "median": float(q[2])}


def warnings_for(summary: dict) -> list[str]:
    """Reviewer warnings for the run's warnings list."""
    out = []
    mem = summary["memorisation"]
    if mem["near_copies"]:
        out.append(f"audit: {mem['near_copies']} synthetic images ({100 * mem['near_copy_rate']:.1f}%) are near copies "
                   "of training images (closer than held-out real images ever are); see audit/closest_pairs.png "
                   "before sharing, or set audit.drop_copies: true")
    c_t = (mem.get("data_copying") or {}).get("c_t")
    if c_t is not None and c_t < -3:
        out.append(f"audit: data-copying statistic C_T = {c_t:.1f} (< -3): synthetic images sit closer to the training "
                   "images than new real images do: the generator memorises")
    faith = summary.get("faithfulness")
    if faith and faith["real_heldout"] and faith["real_heldout"]["balanced_accuracy"] < 0.6:
        out.append(f"audit: the feature space is weak: its classifier recognises only "
                   f"{100 * faith['real_heldout']['balanced_accuracy']:.0f}% of held-out real images (balanced), so "
                   "fidelity and faithfulness figures in it say little; train it longer (feature_extractor.options."
                   "classifier_options) or use another feature_extractor")
    if faith and faith["real_heldout"]:
        real = faith["real_heldout"]["accuracy"]
        if faith["overall"] < real - 0.2:
            out.append(f"audit: the real-trained classifier recognises the requested class in {100 * faith['overall']:.0f}% "
                       f"of synthetic images but {100 * real:.0f}% of held-out real ones: many synthetic images do not "
                       "show their label (audit.drop_unfaithful: true removes them)")
    return out


# -- files ----------------------------------------------------------------------------------

FLAG_FIELDS = ["class", "recognised", "pixel_distance", "feature_distance", "mirrored", "flags"]


def write_flags(screen: Screen, classes: list[str], ids: list[dict], path: Path) -> None:
    """One row per synthetic image: ``ids[i]`` names it (e.g. seed and index, or its file); no training image
    is named, only the distances to the nearest one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, [*ids[0], *FLAG_FIELDS] if ids else FLAG_FIELDS)
        writer.writeheader()
        for i, id_ in enumerate(ids):
            writer.writerow({
                **id_, "class": classes[int(screen.labels[i])],
                "recognised": "" if screen.recognised is None else classes[int(screen.recognised[i])],
                "pixel_distance": f"{float(screen.pixel_distance[i]):.5f}",
                "feature_distance": f"{float(screen.feature_distance[i]):.5f}",
                "mirrored": int(screen.mirrored[i]), "flags": ";".join(screen.flags[i]),
            })


def regenerate(generator, flags_csv: Path, classes: list[str], *, progress=None) -> list[SyntheticBatch]:
    """The exported synthetic set of a run, generated again from its ``audit/flags.csv`` (same seeds, same images kept)."""
    with open(flags_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    by_seed: dict[int, list[dict]] = {}
    for r in rows:
        by_seed.setdefault(int(r["seed"]), []).append(r)
    seeds = list(by_seed)
    out = []
    for seed in (progress(seeds, "sample", len(seeds)) if progress else seeds):
        batch = sorted(by_seed[seed], key=lambda r: int(r["index"]))
        labels = torch.tensor([classes.index(r["class"]) for r in batch], dtype=torch.long)
        images = generator.sample(labels, seed=seed)
        keep = torch.tensor([r["exported"] == "1" for r in batch], dtype=torch.bool)
        out.append(SyntheticBatch(images[keep], labels[keep], seed, [int(r["index"]) for r, k in zip(batch, keep) if k],
                                  [tuple(filter(None, r["flags"].split(";"))) for r, k in zip(batch, keep) if k]))
    return out


def plot_closest_pairs(synthetic: Tensor, screen: Screen, train: Tensor, path: Path, *, n: int = 8) -> None:
    """The ``n`` synthetic images closest to a training image (pixel space), each above that training image."""
    if n == 0 or not len(screen):
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = screen.pixel_distance.argsort()[:n].tolist()
    fig, axes = plt.subplots(2, len(order), figsize=(1.5 * len(order), 3.4), dpi=100, squeeze=False)
    show = lambda ax, img: ax.imshow(((img.float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).squeeze(-1).numpy(),  # noqa: E731
                                     cmap="gray", vmin=0, vmax=1)
    for col, i in enumerate(order):
        nearest_img = train[int(screen.nearest_train[i])]
        show(axes[0, col], synthetic[i])
        show(axes[1, col], nearest_img.flip(-1) if screen.mirrored[i] else nearest_img)
        flag = " COPY" if "near_copy" in screen.flags[i] else ""
        axes[0, col].set_title(f"d={float(screen.pixel_distance[i]):.3f}{flag}", fontsize=7,
                               color="crimson" if flag else "black")
        axes[1, col].set_title("mirrored" if screen.mirrored[i] else "", fontsize=7)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("closest synthetic (top) / training (bottom) pairs, pixel RMS distance", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_distances(screen: Screen, auditor: Auditor, path: Path) -> None:
    """Histograms of nearest-training distances: synthetic vs held-out real, with the near-copy thresholds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100)
    for ax, space, syn, held in (
        (axes[0], "pixel", screen.pixel_distance, auditor.held_pixel_distance),
        (axes[1], "feature", screen.feature_distance, auditor.held_feature_distance),
    ):
        top = float(torch.cat([syn, held]).max()) if len(syn) + len(held) else 1.0
        bins = np.linspace(0, top * 1.02 + 1e-9, 40)
        ax.hist(held.numpy(), bins=bins, alpha=0.6, density=True, label="held-out real")
        ax.hist(syn.numpy(), bins=bins, alpha=0.6, density=True, label="synthetic")
        ax.axvline(auditor.threshold[space], color="crimson", ls="--", label="near-copy threshold")
        ax.set_title(f"distance to the nearest training image ({space})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- auditing folders of images (``augkit audit``) -------------------------------------------


def _read_folder(root: Path, prep, *, reveal: bool, progress) -> tuple[LabeledImages, list[str], list[tuple[str, str]]]:
    """Every image of a class-per-folder tree, preprocessed; bad files are skipped with their reason."""
    from augkit.extension.registry import get_plugin_manager

    source = get_plugin_manager().get("dataset", "image-folder")(root=root, reveal_file_names=reveal)
    classes, images, labels, keys, skipped = source.classes, [], [], [], []
    samples = list(source.samples())
    for sample in progress(samples, f"read {root.name}", len(samples)):
        try:
            images.append(torch.tensor(prep(sample.load())))
        except Exception as exc:  # one bad image must not stop the audit
            skipped.append((sample.key, f"{type(exc).__name__}: {exc}"))
            continue
        labels.append(sample.label)
        keys.append(sample.key)
    if not images:
        raise ValueError(f"{root}: no readable images" + (f" ({skipped[0][1]})" if skipped else ""))
    return LabeledImages(torch.stack(images), torch.tensor(labels, dtype=torch.long), classes), keys, skipped


def _to_classes(data: LabeledImages, classes: list[str], what: str, root: Path) -> LabeledImages:
    unknown = sorted(set(data.classes) - set(classes))
    if unknown:
        raise ValueError(f"{root}: {what} class folder(s) {unknown} are not classes of the reference "
                         f"(reference classes: {', '.join(classes)}); rename the folders to match")
    mapping = torch.tensor([classes.index(c) for c in data.classes], dtype=torch.long)
    return LabeledImages(data.images, mapping[data.labels], classes)


def audit_folders(synthetic: Path, reference: Path, holdout: Path | None, out_dir: Path, *, extractor: FeatureExtractor,
                  prep, settings: AuditSettings = AuditSettings(), pairs: int = 8, progress=None) -> dict:
    """Audit a class-per-folder tree of synthetic images (from augkit or any other tool) against the
    generator's training images and, ideally, held-out real images. Writes into ``out_dir``:
    audit.json, audit/flags.csv (synthetic files by relative path), audit/closest_pairs.png,
    audit/distances.png, report.md and report.html. Reference and held-out file names are never written.
    """
    from augkit.outputs import run_report
    from augkit.outputs.progress import no_progress

    progress = progress or no_progress
    ref, _, ref_skipped = _read_folder(Path(reference), prep, reveal=False, progress=progress)
    held = None
    if holdout is not None:
        held_raw, _, _ = _read_folder(Path(holdout), prep, reveal=False, progress=progress)
        held = _to_classes(held_raw, ref.classes, "held-out", Path(holdout))
    syn_raw, syn_files, syn_skipped = _read_folder(Path(synthetic), prep, reveal=True, progress=progress)
    syn = _to_classes(syn_raw, ref.classes, "synthetic", Path(synthetic))
    if held is not None:
        fit_train, fit_val = ref, held
    else:  # the extractor's own validation images: a seeded 15% of the reference
        perm = torch.randperm(len(ref), generator=torch.Generator().manual_seed(settings.seed))
        cut = max(1, len(ref) * 15 // 100)
        fit_train, fit_val = ref.subset(perm[cut:]), ref.subset(perm[:cut])
    list(progress(extractor.fit(fit_train, fit_val, seed=settings.seed), "audit: feature extractor", None))
    auditor = Auditor(extractor, ref, held, settings)
    screen, feats = auditor.screen(syn.images, syn.labels)
    summary = auditor.summary(screen, feats)
    summary["skipped"] = {"reference": len(ref_skipped), "synthetic": [f for f, _ in syn_skipped]}
    out_dir = Path(out_dir)
    (out_dir / "audit").mkdir(parents=True, exist_ok=True)
    (out_dir / "audit.json").write_text(json.dumps(summary, indent=2))
    write_flags(screen, ref.classes, [{"file": f} for f in syn_files], out_dir / "audit" / "flags.csv")
    plot_closest_pairs(syn.images, screen, ref.images, out_dir / "audit" / "closest_pairs.png", n=pairs)
    plot_distances(screen, auditor, out_dir / "audit" / "distances.png")
    content = [run_report.Heading(f"augkit audit: {Path(synthetic).name}", 1)]
    warnings = warnings_for(summary)
    content += [run_report.Heading("Warnings"), run_report.Bullets(warnings) if warnings else run_report.Para("None.")]
    content += run_report.audit_blocks(summary, ref.classes, "audit")
    (out_dir / "report.md").write_text(run_report.to_markdown(content), encoding="utf-8")
    (out_dir / "report.html").write_text(run_report.to_html(content, out_dir), encoding="utf-8")
    return summary
