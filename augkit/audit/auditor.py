"""The audit itself: an ``Auditor`` fitted on the real data screens synthetic images and summarises them.

``Auditor.screen`` flags each synthetic image (``near_copy``, ``unfaithful``);
``Auditor.summary`` is ``audit.json``; ``warnings_for`` turns a summary into the run's
warnings; ``write_flags`` writes ``audit/flags.csv`` and ``regenerate`` rebuilds a run's
exported synthetic set from it. The metrics are in ``augkit.audit.maths``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from augkit.audit import diversity as D
from augkit.audit.maths import data_copying, fidelity, flat, mirror, nearest, nearest_mirrored, quantiles
from augkit.extension.roles import FeatureExtractor, LabeledImages, SyntheticBatch
from augkit.extension.sampling import sample_checked
from augkit.outputs.run_report import FIDELITY  # the report reads what the audit writes: the list lives there

LOWER_IS_BETTER = {"fd", "kid"}


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
                 settings: AuditSettings = AuditSettings(), *, validation: LabeledImages | None = None):
        """``validation``: without a held-out set, real images the extractor did not train on (a share of the
        reference), to measure how well its classifier recognises real images (the weak-space warning)."""
        self.extractor, self.reference, self.heldout, self.s = extractor, reference, heldout, settings
        self.ref_feats = extractor.features(reference.images).float()
        self.ref_pixels = flat(reference.images)
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
        checked, on = ((heldout, "held-out real images") if heldout is not None and len(heldout) else
                       (validation, "reference images left out of the feature extractor's training"))
        if checked is not None and len(checked):
            proba = extractor.predict_proba(checked.images)
            if proba is not None:
                pred = proba.argmax(1)
                recalls = [(pred[checked.labels == c] == c).float().mean().item()
                           for c in range(len(checked.classes)) if (checked.labels == c).any()]
                self.heldout_accuracy = {"accuracy": float((pred == checked.labels).float().mean()),
                                         "balanced_accuracy": sum(recalls) / len(recalls), "on": on}

    def _pixel_nearest(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return nearest_mirrored(images, self.ref_pixels)

    def _feature_nearest(self, images: Tensor, feats: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feats = self.extractor.features(images).float() if feats is None else feats
        d, _ = nearest(feats, self.ref_feats)
        dm, _ = nearest(self.extractor.features(mirror(images)).float(), self.ref_feats)
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
        both = [c for c in range(len(classes)) if per_class_syn[c] > 0 and per_class_comp[c] > 0]
        out["left_out"] = {"no synthetic images": [n for c, n in enumerate(classes) if not per_class_syn[c]],
                           "no real comparison images": [n for c, n in enumerate(classes) if not per_class_comp[c]]}
        scale = min(1.0, min(((per_class_syn[c] / per_class_comp[c]).item() for c in both), default=1.0))
        take = [int(per_class_comp[c].item() * scale) if c in both else 0 for c in range(len(classes))]
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

    def summary(self, screen: Screen, syn_feats: Tensor, dropped: dict[str, int] | None = None, *,
                images: Tensor | None = None) -> dict:
        """The audit as ``audit.json`` holds it; ``images``: the screened synthetic images, for the
        intra-class MS-SSIM diversity (:mod:`augkit.audit.diversity`) against the training images'."""
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
        if images is not None:
            out["diversity"] = {
                "measure": f"1 - mean MS-SSIM between pairs of images of a class, averaged down to about {D.LAYOUT} px a "
                           "side (their layout; docs/audit.md)",
                "layout_px": D.LAYOUT,
                "collapsed_below": D.COLLAPSED,
                "per_class": D.per_class(images, screen.labels, self.reference.images, self.reference.labels, classes,
                                         seed=self.s.seed, interval=True),
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
            "pixel_distance": quantiles(screen.pixel_distance),
            "heldout_pixel_distance": quantiles(self.held_pixel_distance),
            "feature_distance": quantiles(screen.feature_distance),
            "heldout_feature_distance": quantiles(self.held_feature_distance),
        }
        if self.held_feats is not None and len(self.held_feats) >= 6:
            cells = self.s.cells or int(np.clip(len(self.held_feats) // 20, 1, 10))
            mem["data_copying"] = data_copying(self.ref_feats, self.held_feats, syn_feats, cells=cells, seed=self.s.seed)
        else:
            mem["data_copying"] = {"c_t": None, "note": "needs a held-out real set"}
        out["memorisation"] = mem
        out["dropped"] = dropped or {}
        return out


FAR = 0.5  # synthetic under half the real floor: far from real (the bar docs/generators.md holds generators to)
ADVICE = {  # what to do, in a run's recipe or for `augkit audit` on folders
    "recipe": {"copies": "or set audit.drop_copies: true", "unfaithful": "audit.drop_unfaithful: true removes them",
               "weak": "train it longer (feature_extractor.options.classifier_options) or use another feature_extractor",
               "grids": "the report's sample grids"},
    "folders": {"copies": "audit/flags.csv flags each (near_copy): leave those files out",
                "unfaithful": "audit/flags.csv flags each (unfaithful): leave those files out",
                "weak": "train it longer (--feature-option classifier_options={epochs: ...}) or use other --features",
                "grids": "audit/synthetic_grid.png beside audit/reference_grid.png"},
}


def _far(summary: dict) -> list[str]:
    """Scopes (overall, classes) whose precision, recall or coverage is under FAR x its real floor."""
    fid = summary.get("fidelity") or {}
    found = []
    for name, scope in [("overall", fid.get("overall")), *(fid.get("per_class") or {}).items()]:
        if not scope or "synthetic" not in scope or (name != "overall" and scope.get("n", 0) < 16):
            continue  # a class under 16 images compared: every subset nearly the same few images, the figure noise
        low = [f"{m} {scope['synthetic'][m]['mean']:.2f} against {scope['real_floor'][m]['mean']:.2f}"
               for m in ("precision", "recall", "coverage")
               if scope["synthetic"].get(m) and scope["real_floor"].get(m)
               and scope["synthetic"][m]["mean"] < FAR * scope["real_floor"][m]["mean"]]
        if low:
            found.append(f"{name}: {', '.join(low)}")
    return found


def warnings_for(summary: dict, advice: str = "recipe") -> list[str]:
    """Reviewer warnings for the run's warnings list; ``advice``: "recipe" (a run's) or "folders" (``augkit audit``)."""
    say = ADVICE[advice]
    out = D.warnings_for((summary.get("diversity") or {}).get("per_class", {}), "audit")
    left = (summary.get("fidelity") or {}).get("left_out") or {}
    for why, names in left.items():
        if names:
            what = ("synthetic images of it" if why == "no synthetic images" else
                    "real images of it the generator did not train on")
            out.append(f"audit: class{'es' if len(names) > 1 else ''} {', '.join(names)}: {why}, left out of the "
                       f"overall fidelity figures (to measure it, add {what})")
    far = _far(summary)
    if far:
        out.append(f"audit: the synthetic images are far from real ones in the audit's feature space (under "
                   f"{FAR:g}x the real floor): {'; '.join(far)}; look at them beside real images before using them "
                   f"({say['grids']})")
    mem = summary["memorisation"]
    apart = ("held-out real images ever are" if summary["sizes"].get("heldout") else
             "the training images are to one another")
    if mem["near_copies"]:
        out.append(f"audit: {mem['near_copies']} synthetic images ({100 * mem['near_copy_rate']:.1f}%) are near copies "
                   f"of training images (closer than {apart}); see audit/closest_pairs.png before sharing, {say['copies']}")
    c_t = (mem.get("data_copying") or {}).get("c_t")
    if c_t is not None and c_t < -3:
        out.append(f"audit: data-copying statistic C_T = {c_t:.1f} (< -3): synthetic images sit closer to the training "
                   "images than new real images do: the generator memorises")
    faith = summary.get("faithfulness")
    if faith and faith["real_heldout"] and faith["real_heldout"]["balanced_accuracy"] < 0.6:
        out.append(f"audit: the feature space is weak: its classifier recognises only "
                   f"{100 * faith['real_heldout']['balanced_accuracy']:.0f}% of "
                   f"{faith['real_heldout'].get('on', 'held-out real images')} (balanced), so fidelity and "
                   f"faithfulness figures in it say little; {say['weak']}")
    if faith and faith["real_heldout"]:
        real = faith["real_heldout"]["accuracy"]
        if faith["overall"] < real - 0.2:
            on = faith["real_heldout"].get("on", "held-out real images")
            out.append(f"audit: the real-trained classifier recognises the requested class in {100 * faith['overall']:.0f}% "
                       f"of synthetic images but {100 * real:.0f}% of {on}: many synthetic images do not show their "
                       f"label ({say['unfaithful']})")
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
        images = sample_checked(generator, labels, seed=seed)
        keep = torch.tensor([r["exported"] == "1" for r in batch], dtype=torch.bool)
        out.append(SyntheticBatch(images[keep], labels[keep], seed, [int(r["index"]) for r, k in zip(batch, keep) if k],
                                  [tuple(filter(None, r["flags"].split(";"))) for r, k in zip(batch, keep) if k]))
    return out

