"""Tables and figures of a run: the paper's results table, loss curves, sample grids."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from torch import Tensor  # noqa: E402


def results_table(metrics: dict) -> str:
    """The paper's Table I/II form: one row per regime, macro metrics from one confusion matrix."""
    lines = [
        "| Training data | Accuracy (%) | Precision | Recall | F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for regime, m in metrics["regimes"].items():
        lines.append(
            f"| {regime} | {100 * m['accuracy']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} |"
        )
    return "\n".join(lines)


def write_results_md(
    metrics: dict, path: Path, *, test_counts: list[int], title: str, warnings: list[str] = (), data: dict | None = None
) -> None:
    classes = metrics["classes"]
    support = ", ".join(f"{c} {n}" for c, n in zip(classes, test_counts))
    text = [f"# {title}", ""]
    if data:
        text += ["| split | images | patients | " + " | ".join(classes) + " |", "|---|---:|---:|" + "---:|" * len(classes)]
        for name, s in data["splits"].items():
            text.append(f"| {name} | {s['images']} | {s['patients']} | " + " | ".join(str(s["per_class"][c]) for c in classes) + " |")
        skipped = data.get("skipped", 0)
        text += ["", f"Skipped files: {skipped}" + (" (listed with reasons in skipped.csv)." if skipped else "."), ""]
    text += [
        f"Real test split: {sum(test_counts)} images ({support}). Precision, recall and F1 are macro",
        "averages over classes; every figure in a row comes from that regime's one confusion matrix.",
        "",
        results_table(metrics),
        "",
    ]
    if warnings:
        text += ["Warnings:", "", *(f"- {w}" for w in warnings), ""]
    for regime, m in metrics["regimes"].items():
        text += [f"Confusion matrix, {regime} (rows: true {'/'.join(classes)}; columns: predicted):", ""]
        text += ["    " + " ".join(f"{v:5d}" for v in row) for row in m["confusion_matrix"]]
        text.append("")
    Path(path).write_text("\n".join(text), encoding="utf-8")


def write_csv(rows: list[dict], path: Path) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    """Rows written by ``write_csv``, numbers parsed back (empty cells dropped)."""
    if not Path(path).exists():
        return []

    def parse(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def plot_losses(rows: list[dict], path: Path, *, title: str, keys: tuple[str, ...]) -> None:
    """Loss curves from log rows (only the rows that carry the keys are plotted)."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows if key in r]
        if pts:
            x, y = zip(*pts)
            ax.plot(x, y, label=key, linewidth=1.2)
    ax.set_xlabel("iteration" if "d_loss" in keys else "epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def image_grid(images: Tensor, path: Path, *, title: str, columns: int = 8) -> None:
    """(N, C, H, W) in [-1, 1] -> one PNG grid."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.2, rows * 1.2 + 0.4), dpi=100, squeeze=False)
    pixels = ((images.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = pixels[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def before_after(pairs: list[tuple[np.ndarray, np.ndarray, str]], path: Path) -> None:
    """Rows of (raw image, preprocessed (C, S, S) in [-1, 1]) with the class as the title."""
    if not pairs:
        return
    fig, axes = plt.subplots(len(pairs), 2, figsize=(4.4, 2.2 * len(pairs)), dpi=100, squeeze=False)
    for (raw, done, title), (a, b) in zip(pairs, axes):
        raw = np.asarray(raw, dtype=np.float32)
        a.imshow(raw if raw.ndim == 2 or raw.shape[-1] in (3, 4) else raw[..., 0], cmap="gray")
        a.set_title(f"{title}: raw {raw.shape[1]}x{raw.shape[0]}", fontsize=8)
        b.imshow((done[0] + 1) / 2, cmap="gray", vmin=0, vmax=1)
        b.set_title(f"preprocessed {done.shape[-1]}x{done.shape[-2]}", fontsize=8)
        a.axis("off")
        b.axis("off")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def class_grids(images: Tensor, labels: Tensor, classes: list[str], out_dir: Path, *, per_class: int = 16) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(classes):
        chosen = images[labels == c][:per_class]
        if len(chosen):
            image_grid(chosen, out_dir / f"{name}.png", title=f"synthetic: {name}")
