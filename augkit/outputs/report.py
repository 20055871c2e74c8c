"""Tables and figures of a run: the paper's results table, loss curves, sample grids.

Each figure is a ``matplotlib.figure.Figure`` of its own, written straight to a file: nothing here
selects a backend or touches matplotlib's global figure state, so a caller's own plotting is left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import Tensor

from augkit.config import regimes as regime_table
from augkit.extension.names import check_class_name, inside
from augkit.outputs.run_folder import RunFolder

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def figure(figsize: tuple[float, float], dpi: int = 100) -> Figure:
    """A figure of its own, for a file only: it belongs to no window and leaves matplotlib's global state alone."""
    from matplotlib.figure import Figure  # plotting stays out of the import path of library users

    return Figure(figsize=figsize, dpi=dpi)


def save(fig: Figure, path: Path) -> None:
    """Lay the figure out and write it (PNG at the figure's dpi), atomically and owner-only: many figures
    show real images (grids, closest pairs, previews), which are as private as the data."""
    from augkit.outputs.files import atomic_write_bytes

    fig.tight_layout()
    atomic_write_bytes(Path(path), lambda f: fig.savefig(f, format=Path(path).suffix[1:]))


def _ci(stat: dict | None, scale: float = 1.0, digits: int = 3, signed: bool = False) -> str:
    if not stat or stat.get("low") is None:
        return "n/a"
    f = "+" if signed else ""
    return f"{scale * stat['low']:{f}.{digits}f} to {scale * stat['high']:{f}.{digits}f}"


def _p(p: float | None) -> str:
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def results_table(metrics: dict) -> str:
    """The paper's Table I/II form, plus uncertainty: one row per regime.

    Accuracy and macro precision, recall and F1 are means over the regime's training runs of each
    run's metrics (each from that run's one confusion matrix); the 95 % intervals count the training
    runs and the test patients (docs/evaluation.md).
    """
    lines = [
        "| Training data | Runs | Accuracy (%) | Accuracy 95% CI | Precision | Recall | F1 | F1 95% CI | AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for regime, m in metrics["regimes"].items():
        auc = m.get("seeds", {}).get("auc", {}).get("mean")
        interval = m.get("interval", {})
        lines.append(
            f"| {regime} | {len(m['runs'])} | {100 * m['accuracy']:.1f} | {_ci(interval.get('accuracy'), 100, 1)} "
            f"| {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {_ci(interval.get('f1'))} "
            f"| {'n/a' if auc is None else f'{auc:.3f}'} |"
        )
    return "\n".join(lines)


def comparisons_table(metrics: dict) -> str:
    """Every comparison: the difference, its 95 % interval, the raw and the Holm-adjusted p-value, per metric."""
    lines = [
        "| Regime | vs | F1 difference (95% CI) | p | Holm p | Accuracy difference (95% CI) | p | Holm p |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in metrics.get("comparisons", []):
        f1, acc = row["f1"], row["accuracy"]
        lines.append(
            f"| {row['regime']} | {row['reference']} | {f1['estimate']:+.3f} ({_ci(f1, signed=True)}) "
            f"| {_p(f1['p_value'])} | {_p(f1['p_holm'])} "
            f"| {100 * acc['estimate']:+.1f} ({_ci(acc, 100, 1, signed=True)}) | {_p(acc['p_value'])} "
            f"| {_p(acc['p_holm'])} |"
        )
    return "\n".join(lines)


def verdict_lines(metrics: dict) -> list[str]:
    """The headline: the verdict sentences, then what the intervals do not cover."""
    lines = list(metrics.get("verdict", []))
    lines += [f"Not covered: {note}." for note in metrics.get("not_covered", [])]
    return lines


def write_results_md(
    metrics: dict, path: Path, *, test_counts: list[int], title: str, warnings: list[str] = (), data: dict | None = None
) -> None:
    classes = metrics["classes"]
    support = ", ".join(f"{c} {n}" for c, n in zip(classes, test_counts))
    text = [f"# {title}", ""]
    headline = verdict_lines(metrics)
    if headline:
        text += ["## Verdict", "", *(f"- {line}" for line in headline), ""]
    if data:
        text += ["| split | images | patients | " + " | ".join(classes) + " |", "|---|---:|---:|" + "---:|" * len(classes)]
        for name, s in data["splits"].items():
            text.append(f"| {name} | {s['images']} | {s['patients']} | " + " | ".join(str(s["per_class"][c]) for c in classes) + " |")
        skipped = data.get("skipped", 0)
        text += ["", f"Skipped files: {skipped}" + (" (listed with reasons in skipped.csv)." if skipped else "."), ""]
    text += [
        f"Real test split: {sum(test_counts)} images ({support}). Precision, recall and F1 are macro",
        "averages over classes. Each run's figures come from its one confusion matrix; a row is the",
        "mean over the regime's training runs, and the confusion matrices below are summed over them.",
        "Intervals and p-values count the training runs and the test patients (docs/evaluation.md);",
        f"budget: {_budget(metrics)}.",
        "",
        results_table(metrics),
        "",
    ]
    if metrics.get("comparisons"):
        text += ["Comparisons (Holm-adjusted over the comparisons in this table, per metric):", "",
                 comparisons_table(metrics), ""]
    if warnings:
        text += ["Warnings:", "", *(f"- {w}" for w in warnings), ""]
    for regime, m in metrics["regimes"].items():
        text += [f"Confusion matrix summed over seeds, {regime} (rows: true {'/'.join(classes)}; columns: predicted):", ""]
        text += ["    " + " ".join(f"{v:5d}" for v in row) for row in m["confusion_matrix"]]
        text.append("")
    from augkit.outputs.files import atomic_write_text

    atomic_write_text(Path(path), "\n".join(text))


def _budget(metrics: dict) -> str:
    b = metrics.get("budget") or {}
    if b.get("mode") == "steps":
        return f"every regime {b['steps']} optimizer steps (evaluation.budget: steps)"
    return "every regime the same epochs (evaluation.budget: epochs)"


def plot_study(metrics: dict, curves: list[dict], out_dir: Path) -> None:
    """The study's figures: classifier loss curves, confusion matrices, metrics by regime, ratio sweep."""
    regimes = list(metrics["regimes"])
    classes = metrics["classes"]
    first_seed = metrics["seeds"][0]

    # the paper's Figure 8: train / validation loss per regime (first seed)
    fig = figure((3.2 * len(regimes), 2.8))
    axes = fig.subplots(1, len(regimes), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        rows = [r for r in curves if r["regime"] == regime and r["seed"] == first_seed]
        for key in ("train_loss", "val_loss"):
            ax.plot([r["step"] for r in rows], [r[key] for r in rows], label=key.replace("_", " "))
        ax.set_title(regime, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss")
    axes[0][0].legend(fontsize=8)
    save(fig, out_dir / RunFolder.CLASSIFIER_LOSSES_PLOT)

    # confusion matrices, pooled over seeds
    fig = figure((2.8 * len(regimes), 2.9))
    axes = fig.subplots(1, len(regimes), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        cm = np.asarray(metrics["regimes"][regime]["confusion_matrix"])
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="black" if v < cm.max() / 2 else "white")
        ax.set_xticks(range(len(classes)), classes, fontsize=7, rotation=30)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(regime, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    save(fig, out_dir / RunFolder.CONFUSION_PLOT)

    # metric by regime, with the 95 % intervals (training runs and test patients) as error bars
    fig = figure((max(5, 1.3 * len(regimes)), 3.2))
    ax = fig.subplots()
    width = 0.2
    for k, name in enumerate(("accuracy", "f1")):
        means, errs = [], [[], []]
        for regime in regimes:
            st = metrics["regimes"][regime].get("interval", {}).get(name, {})
            mean = metrics["regimes"][regime][name]
            means.append(mean)
            errs[0].append(mean - st["low"] if st.get("low") is not None else 0)
            errs[1].append(st["high"] - mean if st.get("high") is not None else 0)
        ax.bar(np.arange(len(regimes)) + (k - 0.5) * width, means, width, yerr=errs, capsize=3, label=name)
    ax.set_xticks(range(len(regimes)), regimes, fontsize=8, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean over runs (95% CI)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    save(fig, out_dir / RunFolder.METRICS_PLOT)

    sweep = sorted((ratio, r) for r in regimes if (ratio := regime_table.parse(r)[1]) is not None)
    if sweep:
        control = regime_table.control()  # ratio 0
        if control in metrics["regimes"]:
            sweep = [(0.0, control), *sweep]
        fig = figure((5, 3.2))
        ax = fig.subplots()
        for name in ("accuracy", "f1"):
            stats = [metrics["regimes"][r]["interval"][name] for _, r in sweep]
            x = [ratio for ratio, _ in sweep]
            ax.plot(x, [s["estimate"] for s in stats], marker="o", label=name)
            if all(s.get("low") is not None for s in stats):
                ax.fill_between(x, [s["low"] for s in stats], [s["high"] for s in stats], alpha=0.2)
        ax.set_xlabel("synthetic : real ratio (0 = real only)")
        ax.set_ylabel("mean over runs (95% CI)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        save(fig, out_dir / RunFolder.RATIO_PLOT)


def loss_keys(rows: list[dict]) -> tuple[str, ...]:
    """The measurements in log rows that are losses (``d_loss``, ``g_loss``, a diffusion model's ``loss``, a
    plugin's ``critic_loss`` ...), in the order they first appear."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update((k, None) for k in row if k == "loss" or k.endswith("_loss"))
    return tuple(keys)


def plot_losses(rows: list[dict], path: Path, *, title: str, keys: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Loss curves from log rows (only the rows that carry the keys are plotted); ``keys`` unset: every loss
    the rows carry (``loss_keys``). Returns the keys drawn; with none, the figure says so instead of an empty
    legend."""
    fig = figure((7, 4), dpi=110)
    ax = fig.subplots()
    drawn = []
    for key in loss_keys(rows) if keys is None else keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=key, linewidth=1.2)
            drawn.append(key)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if drawn:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no losses were logged", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    save(fig, path)
    return tuple(drawn)


def image_grid(images: Tensor, path: Path, *, title: str, columns: int = 8) -> None:
    """(N, C, H, W) in [-1, 1] -> one PNG grid."""
    from torchvision.utils import make_grid

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig = figure((max(3.0, min(columns, n) * 1.2 + 0.4), rows * 1.2 + 0.4))  # 3 inches: room for the title
    ax = fig.add_subplot()
    ax.axis("off")
    if n:
        # one tiled image in one axes, white gaps between the images: an axes per image took 2.3-7.6x as long
        # a grid (benchmarks/grid_drawing.py), most of a tiny run's reports
        images = (images.float().clamp(-1, 1) + 1) / 2
        gap = max(1, images.shape[-1] // 16)
        tiles = make_grid(images, nrow=columns, padding=gap, pad_value=1.0)
        ax.imshow(tiles.permute(1, 2, 0).numpy(), vmin=0, vmax=1)
    fig.suptitle(title)
    save(fig, path)


def before_after(pairs: list[tuple[np.ndarray, np.ndarray, str]], path: Path) -> None:
    """Rows of (raw image, preprocessed (C, S, S) in [-1, 1]) with the class as the title."""
    if not pairs:
        return
    fig = figure((4.4, 2.2 * len(pairs)))
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    for (raw, done, title), (a, b) in zip(pairs, axes):
        raw = np.asarray(raw, dtype=np.float32)
        if raw.ndim == 3 and raw.shape[-1] in (3, 4):  # colour: imshow draws floats in [0, 1] and clips the rest
            raw = raw[..., :3]
            lo, hi = float(raw.min()), float(raw.max())
            raw = (raw - lo) / (hi - lo) if hi > lo else np.zeros_like(raw)
        elif raw.ndim == 3:
            raw = raw[..., 0]
        a.imshow(raw, cmap="gray")
        a.set_title(f"{title}: raw {raw.shape[1]}x{raw.shape[0]}", fontsize=8)
        b.imshow((done[0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
        b.set_title(f"preprocessed {done.shape[-1]}x{done.shape[-2]}", fontsize=8)
        a.axis("off")
        b.axis("off")
    save(fig, path)


def class_grids(images: Tensor, labels: Tensor, classes: list[str], out_dir: Path, *, per_class: int = 16,
                prefix: str = "") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(classes):
        chosen = images[labels == c][:per_class]
        if len(chosen):
            kind = "real" if prefix else "synthetic"
            image_grid(chosen, inside(out_dir, f"{prefix}{check_class_name(name, 'class')}.png"), title=f"{kind}: {name}")
