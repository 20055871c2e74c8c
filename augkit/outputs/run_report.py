"""The run report: ``report.md`` and a self-contained ``report.html`` built from a run folder.

Everything comes from the files the stages wrote (no recomputation), so a report can be
rebuilt at any time. The HTML embeds its images and needs no network.
"""

from __future__ import annotations

import base64
import csv
import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augkit.outputs.files import atomic_write_text
from augkit.outputs.report import comparisons_table, results_table, verdict_lines
from augkit.outputs.files import read_json
from augkit.outputs.run_folder import RunFolder

# The fidelity metrics of audit.json, in the order of the report's table. They live here, where the
# report reads them, and augkit.audit (which writes them) imports them: outputs never imports the audit.
FIDELITY = ("fd", "kid", "precision", "recall", "density", "coverage")


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Image:
    path: str  # relative to the report's folder
    caption: str


@dataclass
class Row:
    images: list[Image]  # shown side by side


@dataclass
class Bullets:
    items: list[str]
    kind: str = "warning"  # "warning" (amber) or "plain"


@dataclass
class Contents:
    """Links to every section (level-2 heading) of the report."""

    headings: list[str]


def slug(text: str) -> str:
    """The anchor of a heading, as GitHub makes it for markdown: lower case, spaces to dashes, no punctuation."""
    return re.sub(r"[^a-z0-9 _-]", "", text.lower()).strip().replace(" ", "-")


def _md_table(md: str) -> Table:
    lines = [line.strip().strip("|").split("|") for line in md.strip().splitlines()]
    return Table([c.strip() for c in lines[0]], [[c.strip() for c in row] for row in lines[2:]])


def blocks(run_dir: Path, out_dir: Path | None = None) -> list:
    """The report's content, in order. ``out_dir`` holds the study (an evaluation's own folder)."""
    out_dir = out_dir or run_dir
    metrics = read_json(out_dir / RunFolder.METRICS)
    data = read_json(run_dir / RunFolder.DATA, {})
    # an evaluation that changed generator options sampled (and audited) its own images: its recipe and audit
    resampled = out_dir != run_dir and read_json(out_dir / RunFolder.SYNTHETIC_SEEDS, {}).get("generator_options_changed")
    own = out_dir if resampled else run_dir
    recipe = (own / RunFolder.RECIPE).read_text() if (own / RunFolder.RECIPE).exists() else ""
    classes = metrics["classes"]
    rel = lambda p: Path(p).relative_to(out_dir).as_posix() if out_dir == run_dir else Path("..", "..", Path(p).relative_to(run_dir)).as_posix()  # noqa: E731
    out: list = [Heading(f"augkit report: {run_dir.name}", 1)]
    headline = verdict_lines(metrics)
    if headline:
        out += [Heading("Verdict"), Bullets(headline, kind="plain")]

    warnings = list(metrics.get("warnings", []))
    warnings = list(dict.fromkeys(RunFolder(run_dir).warnings() + warnings
                                  + (RunFolder(out_dir).warnings() if out_dir != run_dir else [])))
    out += [Heading("Warnings")]
    out += [Bullets(warnings)] if warnings else [Para("None.")]

    out += [Heading("Data")]
    if data:
        out.append(Table(
            ["split", "images", "patients", *classes],
            [[name, str(s["images"]), str(s["patients"]), *(str(s["per_class"][c]) for c in classes)]
             for name, s in data["splits"].items()],
        ))
        out.append(Para(f"{data['images']} images used; {data['skipped']} skipped"
                        + (" (reasons in skipped.csv)." if data["skipped"] else ".")
                        + " Every patient is in exactly one split."))
    skipped = run_dir / RunFolder.SKIPPED
    if skipped.exists():
        rows = list(csv.DictReader(open(skipped, newline="")))
        out.append(Table(["skipped sample", "reason"], [[r["sample"], r["reason"]] for r in rows[:20]]))
        if len(rows) > 20:
            out.append(Para(f"... and {len(rows) - 20} more in skipped.csv."))

    out += [Heading("Synthetic images"), Para("Generated images of each class (left) beside real training images (right)."
                                              + (" These are the run's images: this evaluation sampled its own with "
                                                 f"other generator options ({options_text(resampled)}); the audit below "
                                                 "is of those." if resampled else ""))]
    for c in classes:
        # each grid carries its title ("synthetic: normal"); the caption says which file it is, not the title again
        pair = [Image(rel(run_dir / RunFolder.SAMPLES / f"{name}.png"), f"{RunFolder.SAMPLES}/{name}.png")
                for name in (c, f"real_{c}") if (run_dir / RunFolder.SAMPLES / f"{name}.png").exists()]
        if pair:
            out.append(Row(pair))

    audit = read_json(own / RunFolder.AUDIT)
    if audit:
        out += audit_blocks(audit, classes, rel(own / RunFolder.AUDIT_DIR))

    out += [Heading("Generator training")]
    if (run_dir / RunFolder.LOSSES_PLOT).exists():
        out.append(Image(rel(run_dir / RunFolder.LOSSES_PLOT), "the losses the generator logged (losses.csv)"))
    selection = read_json(run_dir / RunFolder.SELECTION)
    if selection and selection.get("scores"):
        judge = selection.get("judge_val_accuracy")
        out.append(Para(
            "At each checkpoint a small CNN trained on the real training split labels generated images: conditional "
            "accuracy is how often it recognises the requested class; diversity is, per class, 1 - MS-SSIM between "
            "pairs of generated images (their layouts, averaged down to a few pixels: docs/audit.md) over the same "
            "for real images (mean over classes; 1 = as varied as real). "
            f"The CNN recognises {100 * judge:.0f}% of real validation images (balanced). A checkpoint with a "
            "collapsed class (diversity below 0.5) is never used when one without exists; "
            f"used: {selection.get('used', 'last.pt')}."
        ))
        out.append(Table(
            ["iteration", "conditional accuracy", "diversity", "collapsed classes", "score"],
            [[str(s["step"]), f"{s['conditional_accuracy']:.2f}", f"{s['diversity']:.2f}",
              "diverged (NaN)" if s.get("diverged") else ", ".join(s.get("collapsed", [])) or "none",
              f"{s['score']:.2f}"] for s in selection["scores"]],
        ))

    out += [Heading("Classifier study"), Para(
        f"Classifier trained under each regime with seeds {', '.join(map(str, metrics['seeds']))}; every figure is "
        f"measured on the real test split ({sum(metrics['test_counts'])} images: "
        + ", ".join(f"{c} {n}" for c, n in zip(classes, metrics["test_counts"]))
        + "). Accuracy, precision, recall and F1 (macro) are means over each regime's training runs of each run's "
        "metrics, each from that run's one confusion matrix. The 95% intervals and p-values count the training runs "
        "and the test patients (a Student t over both variance parts; docs/evaluation.md); p-values of the "
        "comparisons are Holm-adjusted over the comparisons of the table, per metric."
    ), _md_table(results_table(metrics))]
    if metrics.get("comparisons"):
        out += [Para("Comparisons: every regime against real, every synthetic regime against its matched controls."),
                _md_table(comparisons_table(metrics))]
    for name, caption in (
        (RunFolder.METRICS_PLOT, "metrics by regime (mean over runs, 95% CI)"),
        (RunFolder.CONFUSION_PLOT, "confusion matrices (summed over runs)"),
        (RunFolder.CLASSIFIER_LOSSES_PLOT, "classifier train / validation loss per regime (the paper's Figure 8)"),
        (RunFolder.RATIO_PLOT, "synthetic:real ratio sweep"),
    ):
        if (out_dir / name).exists():
            out.append(Image(name, caption))

    out += [Heading("Recipe"), Para("The fully resolved recipe of this run:"), Table([RunFolder.RECIPE], [[recipe]])]
    out.insert(1, Contents([b.text for b in out if isinstance(b, Heading) and b.level == 2]))
    return out


def options_text(changed: dict) -> str:
    """``guidance 3.0, sampling_steps 8``: generator options an evaluation changed."""
    return ", ".join(f"{k} {v}" for k, v in changed.items())


def _ms(stat: dict | None, digits: int = 3) -> str:
    """``763 ± 240``, ``0.412 ± 0.031``: mean and spread with the same decimals, never an exponent."""
    if not stat:
        return "n/a"
    mean, std = float(stat["mean"]), float(stat["std"])
    magnitude = max(abs(mean), abs(std))
    if 0 < magnitude < 10 ** -(digits + 1):  # e.g. a KID of 4e-9 +- 4e-8: zero as far as the figure can tell
        return f"< {10 ** -(digits + 1):.{digits + 1}f}"
    decimals = 0 if magnitude >= 10 ** (digits - 1) else max(0, digits - 1 - int(np.floor(np.log10(magnitude)))) \
        if magnitude > 0 else digits
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def _layout(diversity: dict) -> str:
    """How the audit compared the images: their layouts since 2026-12-04, full images before."""
    side = diversity.get("layout_px")
    return (f"each averaged down to its layout (about {side} px a side: grain is not variety)" if side
            else "at full resolution")


def ratio_text(figures: dict) -> str:
    """A class's synthetic / real diversity and, where the audit gave it, its 95 % interval: "0.80 (0.71-0.89)"."""
    if figures["ratio"] is None:
        return "n/a"
    low_high = figures.get("ratio_interval")
    return f"{figures['ratio']:.2f}" + (f" ({low_high[0]:.2f}-{low_high[1]:.2f})" if low_high else "")


def _f3(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def audit_blocks(audit: dict, classes: list[str], audit_dir: str) -> list:
    """The audit section: fidelity beside real-vs-real floors, label faithfulness, memorisation."""
    fid, mem, faith = audit["fidelity"], audit["memorisation"], audit.get("faithfulness")
    sizes = audit["sizes"]
    out: list = [Heading("Audit: quality and privacy of the synthetic images"), Para(
        f"Feature space: {audit['feature_space']}. {sizes['synthetic']} synthetic images against "
        f"{sizes['reference']} training images and {sizes['heldout']} held-out real images (see docs/audit.md)."
    ), Heading("Fidelity and diversity", 3), Para(
        f"Each figure is the mean ± std over {audit['settings']['repeats']} random 80% subsets. The real floor is the "
        f"same metric for {fid['floor']}, at the same sample size: what \"as good as real\" looks like here. "
        "Frechet distance (FD) and KID: lower is better; precision (fidelity), recall (diversity), density and "
        f"coverage (k = {audit['settings']['k']}): nearer the floor is better."
    )]
    scopes = [("overall", fid["overall"]), *fid["per_class"].items()]
    header = ["metric"] + [f"{name}: {kind}" for name, _ in scopes for kind in ("synthetic", "real floor")]
    rows = []
    for metric in FIDELITY:
        row = [metric]
        for _, scope in scopes:
            if not scope or "synthetic" not in scope:
                row += ["n/a", "n/a"]
                continue
            row += [_ms(scope["synthetic"].get(metric)), _ms(scope["real_floor"].get(metric))]
        rows.append(row)
    rows.append(["images compared"] + [str((scope or {}).get("n", 0)) for _, scope in scopes for _ in range(2)])
    out.append(Table(header, rows))
    notes = [f"{name}: {scope['note']}" for name, scope in scopes if scope and "note" in scope]
    if notes:
        out.append(Para("Not measured: " + "; ".join(notes) + "."))
    diversity = audit.get("diversity")
    if diversity:
        out.append(Para(
            "Intra-class diversity, in pixels (no network involved): 1 - mean MS-SSIM between pairs of images of a "
            f"class, {_layout(diversity)}, synthetic against the training images of the class. 0 is one image "
            f"repeated; a class below {diversity['collapsed_below']:g}x the real figure is collapsed. In brackets: "
            "the ratio's 95% bootstrap interval over the synthetic images drawn (from a few dozen images a class's "
            "ratio moves by about 0.1 with the draw alone)."))
        out.append(Table(["class", "synthetic", "real", "synthetic / real", "collapsed"], [
            [name, _f3(f["synthetic"]), _f3(f["real"]), ratio_text(f),
             "n/a" if f["ratio"] is None else "yes" if f["collapsed"] else "no"]
            for name, f in diversity["per_class"].items()]))

    out.append(Heading("Label faithfulness", 3))
    if faith:
        real = faith.get("real_heldout")
        per_class = ", ".join(f"{c} {100 * v:.0f}%" for c, v in faith["per_class"].items() if v is not None)
        out.append(Para(
            f"The real-trained classifier recognises the requested class in {100 * faith['overall']:.0f}% of synthetic "
            f"images ({per_class})"
            + (f"; the same classifier recognises {100 * real['accuracy']:.0f}% of "
               f"{real.get('on', 'held-out real images')} ({100 * real['balanced_accuracy']:.0f}% balanced)."
               if real else ".")
        ))
        out.append(Table(["requested \\ recognised", *classes],
                         [[c, *map(str, row)] for c, row in zip(classes, faith["confusion"])]))
    else:
        out.append(Para("The feature extractor does not classify: label faithfulness was not measured."))

    out.append(Heading("Memorisation", 3))
    c_t = mem["data_copying"].get("c_t")
    real = "held-out real" if sizes["heldout"] else "reference (each to the others)"
    ct_text = ("not computed (" + mem["data_copying"].get("note", "") + ")" if c_t is None else
               f"{c_t:.2f} over {mem['data_copying']['cells']} cells ("
               + ("< -3: the generator copies training images" if c_t < -3 else
                  "> 3: synthetic images are farther from the training images than new real images are" if c_t > 3 else
                  "between -3 and 3: no sign of copying") + ")")
    out.append(Para(
        f"Near copies: {mem['near_copies']} of {sizes['synthetic']} synthetic images "
        f"({', '.join(f'{c} {n}' for c, n in mem['near_copies_per_class'].items())}): closer to a training image (or "
        f"its mirror) than {audit['settings']['copy_margin']:g} x the {100 * audit['settings']['copy_quantile']:g}% "
        f"quantile of {mem['calibration']} (pixel RMS < {mem['thresholds']['pixel']:.4g} or feature distance < "
        f"{mem['thresholds']['feature']:.4g}); {100 * mem['heldout_flag_rate']:.1f}% of {real} images fall under "
        f"the same thresholds. Median distance to the nearest training image: synthetic "
        f"{_q(mem['pixel_distance'])} vs {real} {_q(mem['heldout_pixel_distance'])} (pixel RMS). "
        f"Data-copying statistic C_T (Meehan et al. 2020): {ct_text}."
    ))
    dropped = audit.get("dropped") or {}
    if dropped:
        out.append(Para(f"Dropped before export and the study: {dropped.get('near_copy', 0)} near copies, "
                        f"{dropped.get('unfaithful', 0)} unfaithful images; {dropped.get('replacements_generated', 0)} "
                        "replacements generated and audited the same way."))
    out.append(Row([Image(f"{audit_dir}/closest_pairs.png", "closest synthetic / training pairs"),
                    Image(f"{audit_dir}/distances.png", "distances to the nearest training image")]))
    return out


def _q(q: dict | None) -> str:
    return "n/a" if not q else f"{q['median']:.3g}"


def to_markdown(content: list) -> str:
    lines = []
    for b in content:
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Bullets):
            lines += [f"- {item}" for item in b.items] + [""]
        elif isinstance(b, Contents):
            lines += ["Contents: " + " · ".join(f"[{h}](#{slug(h)})" for h in b.headings), ""]
        elif isinstance(b, Image):
            lines += [f"![{b.caption}]({b.path})", ""]
        elif isinstance(b, Row):
            lines += [" ".join(f"![{i.caption}]({i.path})" for i in b.images), ""]
        elif isinstance(b, Table):
            if b.header == [RunFolder.RECIPE]:
                lines += ["```yaml", b.rows[0][0].rstrip(), "```", ""]
                continue
            lines += ["| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(row) + " |" for row in b.rows] + [""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}figure{display:inline-block;margin:.5em}
figcaption{font-size:13px;color:#555}img{max-width:100%}pre{background:#f6f6f6;padding:1em;text-align:left;overflow:auto}
li{margin:.3em 0}ul.warning li{color:#8a4b00}nav{margin:1em 0;font-size:15px}.row{display:flex;gap:1em}.row figure{flex:1;min-width:0}"""


def to_html(content: list, base: Path) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>augkit report</title>",
             f"<style>{STYLE}</style></head><body>"]
    for b in content:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level} id='{slug(b.text)}'>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append(f"<ul class='{b.kind}'>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Contents):
            parts.append("<nav>" + " · ".join(f"<a href='#{slug(h)}'>{html.escape(h)}</a>" for h in b.headings)
                         + "</nav>")
        elif isinstance(b, Image):
            parts.append(_figure(b, base))
        elif isinstance(b, Row):
            parts.append("<div class='row'>" + "".join(_figure(i, base) for i in b.images) + "</div>")
        elif isinstance(b, Table):
            if b.header == [RunFolder.RECIPE]:
                parts.append(f"<pre>{html.escape(b.rows[0][0])}</pre>")
                continue
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(image: Image, base: Path) -> str:
    data = base64.b64encode((base / image.path).read_bytes()).decode()
    caption = html.escape(image.caption)
    return f"<figure><img src='data:image/png;base64,{data}' alt='{caption}'><figcaption>{caption}</figcaption></figure>"


def write(run_dir: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """Write report.md and report.html into ``out_dir`` (default: the run folder)."""
    out_dir = out_dir or run_dir
    content = blocks(run_dir, out_dir)
    md, page = out_dir / RunFolder.REPORT_MD, out_dir / RunFolder.REPORT_HTML
    atomic_write_text(md, to_markdown(content))  # owner-only, as the real images embedded in the page
    atomic_write_text(page, to_html(content, out_dir))
    return md, page
