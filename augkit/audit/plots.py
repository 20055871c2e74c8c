"""The audit's figures: the closest synthetic / training pairs and the nearest-training distance histograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from augkit.audit.auditor import Auditor, Screen
from augkit.outputs.report import figure, save


def plot_closest_pairs(synthetic: Tensor, screen: Screen, train: Tensor, path: Path, *, n: int = 8,
                       classes: list[str] | None = None) -> None:
    """The ``n`` synthetic images closest to a training image (pixel space), each above that training image."""
    if n == 0 or not len(screen):
        return
    order = screen.pixel_distance.argsort()[:n].tolist()
    fig = figure((1.6 * len(order), 4.0))
    axes = fig.subplots(2, len(order), squeeze=False)
    show = lambda ax, img: ax.imshow(((img.float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).squeeze(-1).numpy(),  # noqa: E731
                                     cmap="gray", vmin=0, vmax=1)
    for col, i in enumerate(order):
        nearest_img = train[int(screen.nearest_train[i])]
        show(axes[0, col], synthetic[i])
        show(axes[1, col], nearest_img.flip(-1) if screen.mirrored[i] else nearest_img)
        flag = " COPY" if "near_copy" in screen.flags[i] else ""
        name = f"{classes[int(screen.labels[i])]}\n" if classes else ""
        axes[0, col].set_title(f"{name}d={float(screen.pixel_distance[i]):.3f}{flag}", fontsize=9,
                               color="crimson" if flag else "black")
        if screen.mirrored[i]:  # below the training image, clear of it
            axes[1, col].text(0.5, -0.06, "mirrored", transform=axes[1, col].transAxes, ha="center", va="top",
                              fontsize=9)
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle("closest synthetic (top) / training (bottom) pairs, pixel RMS distance", fontsize=9)
    save(fig, path)


def plot_distances(screen: Screen, auditor: Auditor, path: Path) -> None:
    """Histograms of nearest-training distances: synthetic vs held-out real, with the near-copy thresholds."""
    fig = figure((9, 3.2))
    axes = fig.subplots(1, 2)
    for ax, space, syn, held in (
        (axes[0], "pixel", screen.pixel_distance, auditor.held_pixel_distance),
        (axes[1], "feature", screen.feature_distance, auditor.held_feature_distance),
    ):
        top = float(torch.cat([syn, held]).max()) if len(syn) + len(held) else 1.0
        bins = np.linspace(0, top * 1.02 + 1e-9, 40)
        real = "held-out real" if getattr(auditor, "held_feats", None) is not None else "reference, each to the others"
        ax.hist(held.numpy(), bins=bins, alpha=0.6, density=True, label=real)
        ax.hist(syn.numpy(), bins=bins, alpha=0.6, density=True, label="synthetic")
        ax.axvline(auditor.threshold[space], color="crimson", ls="--", label="near-copy threshold")
        ax.set_title(f"distance to the nearest training image ({space})", fontsize=9)
        ax.set_ylabel("density (share of images per unit distance)", fontsize=7)
        ax.legend(fontsize=7)
    save(fig, path)
