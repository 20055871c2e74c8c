"""Is the generator useful yet? A judge trained on real data scores generated images.

The judge is a small CNN trained on the real training split only. Every few iterations the
runner samples a fixed, seeded set per class and measures

* conditional accuracy: how often the judge recognises the requested class;
* diversity: per class, ``1 - mean MS-SSIM`` between pairs of generated images, each averaged
  down to its layout (about 10 pixels a side), divided by the same among real training images of the class
  (:mod:`augkit.audit.diversity`; 1.0 = as varied as the real data, near 0 = one image
  repeated). A class below 0.5 is *collapsed*.

* near copies: generated images closer to a training image (pixels, or the image mirrored) than
  half the 1 % quantile of held-out real images' distances to their nearest training image
  (the audit's pixel-space rule, :class:`augkit.audit.Auditor`).

The score is ``conditional_accuracy * min(1, mean diversity)``. A checkpoint that copies never
wins against one that does not, and one with a collapsed class never wins against one without:
the kept checkpoint is the best-scoring clean one (with an untrusted judge, the latest clean
one); when every checkpoint has a collapsed class, the best-scoring of them (with an untrusted
judge, the least collapsed: its worst class's diversity), and when every one copies, the one
with the fewest copies (:func:`rank`). Works with
any generator: it only calls ``sample``.

Diversity used to be measured in the judge's features (``feature_diversity``, still reported),
and read 0.99 for sixteen near-identical images. ``benchmarks/feature_diversity.py`` shows how:
one off-distribution blob repeated with pixel noise of s.d. 0.1 reads 0.66-1.09 in the judge's
features (their norms 1.4-1.7x the real images') but 0.14-0.20 in MS-SSIM; the judge's
features amplify small pixel differences between images unlike anything it saw. Pixels do not
depend on a network. At full resolution, though, MS-SSIM counted an AC-GAN's blotchy grain as
variety (one blob per class read 0.5-0.8x the real figure and won selection): the layouts are
compared instead (:mod:`augkit.audit.diversity`).
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augkit.audit import diversity as D
from augkit.audit.maths import flat, nearest, nearest_mirrored
from augkit.extension.roles import Generator, LabeledImages
from augkit.extension.sampling import sample_checked

log = logging.getLogger("augkit")


class Judge(nn.Module):
    """Four strided convolutions, global average pooling, a linear head."""

    def __init__(self, n_classes: int, channels: int, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out, stride in ((width // 2, 2), (width, 2), (2 * width, 2), (2 * width, 1)):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    @torch.inference_mode()
    def embed(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(N, C, H, W) -> (features (N, F), predicted class (N,)), in eval mode."""
        self.eval()
        feats = torch.cat([self.features(x[i : i + 256]) for i in range(0, len(x), 256)])
        return feats, self.head(feats).argmax(1)


# Below this balanced accuracy on real validation images, the judge's scores are not trusted.
TRUSTED_JUDGE = 0.7


def train_judge(train: LabeledImages, val: LabeledImages, *, seed: int, steps: int = 1000) -> tuple[Judge, float]:
    """Train on real training images; return the judge and its balanced accuracy on real validation images.

    The learning rate is annealed to zero (cosine): at a constant rate the final weights failed to learn (below
    ``TRUSTED_JUDGE``) in 5 of 24 trainings, which ones a matter of thread rounding; annealed, in none
    (``benchmarks/judge_stability.py``, docs/benchmarks.md)."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    judge = Judge(len(train.classes), train.images.shape[1])
    opt = torch.optim.Adam(judge.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    counts = torch.bincount(train.labels, minlength=len(train.classes)).clamp_min(1).float()
    weights = (1.0 / counts)[train.labels]  # balanced: the minority class matters as much
    judge.train()
    for _ in range(steps):
        idx = torch.multinomial(weights, 32, replacement=True, generator=rng)
        x = train.images[idx]
        shift = int(torch.randint(-2, 3, (1,), generator=rng))
        x = torch.roll(x, shifts=(shift, -shift), dims=(-2, -1))
        loss = F.cross_entropy(judge(x), train.labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
    _, pred = judge.embed(val.images)
    recalls = [(pred[val.labels == c] == c).float().mean().item() for c in range(len(val.classes)) if (val.labels == c).any()]
    return judge, sum(recalls) / len(recalls)  # balanced accuracy: a scarce class counts as much


def _mean_pairwise(feats: Tensor) -> float:
    if len(feats) < 2:
        return 0.0
    d = torch.cdist(feats, feats)
    n = len(feats)
    return (d.sum() / (n * (n - 1))).item()


class Scorer:
    """Scores a generator's samples against the real training set's class-wise diversity.

    ``trusted``: whether the judge recognises real validation images well enough
    (``TRUSTED_JUDGE``) for its conditional accuracy to choose between checkpoints.
    """

    COPY_QUANTILE, COPY_MARGIN = 0.01, 0.5  # the audit's defaults (augkit.audit.AuditSettings)

    def __init__(self, judge: Judge, train: LabeledImages, *, per_class: int, seed: int, trusted: bool = True,
                 heldout: LabeledImages | None = None):
        self.judge, self.classes, self.seed, self.trusted = judge, train.classes, seed, trusted
        self.shape = train.image_shape
        self.labels = torch.arange(len(train.classes)).repeat_interleave(per_class)
        self.train_pixels = flat(train.images)
        if heldout is not None and len(heldout):
            held = self._nearest_train(heldout.images)
        else:  # leave-one-out within the training images
            held, _ = nearest(self.train_pixels, self.train_pixels, exclude_self=True)
        self.copy_distance = self.COPY_MARGIN * float(torch.quantile(held.double(), self.COPY_QUANTILE))
        feats, _ = judge.embed(train.images)
        self.real_feature_diversity = [_mean_pairwise(feats[train.labels == c][:256]) for c in range(len(train.classes))]
        self.real_diversity = [D.diversity(train.images[train.labels == c], seed=seed + c)
                               for c in range(len(train.classes))]

    def _nearest_train(self, images: Tensor) -> Tensor:
        """Each image's (or its mirror's) distance to the nearest training image, pixels RMS."""
        return nearest_mirrored(images, self.train_pixels)[0]

    def __call__(self, generator: Generator) -> dict:
        images = sample_checked(generator, self.labels, seed=self.seed, shape=self.shape, finite=False)
        if not torch.isfinite(images).all():  # a diverged checkpoint: recorded, and ranked below every other
            return {"conditional_accuracy": 0.0, "diversity": 0.0, "feature_diversity": 0.0, "score": 0.0,
                    "collapsed": [], "near_copies": 0, "images": len(images), "trusted": self.trusted,
                    "diverged": True, "per_class": {}}
        copies = self._nearest_train(images) < self.copy_distance
        feats, pred = self.judge.embed(images)
        figures = D.per_class(images, self.labels, torch.empty(0), torch.empty(0), self.classes, seed=self.seed,
                              real_figures=self.real_diversity)
        per_class = {}
        for c, name in enumerate(self.classes):
            mine = self.labels == c
            per_class[name] = {"accuracy": (pred[mine] == c).float().mean().item(),
                               "diversity": figures[name]["ratio"],
                               "diversity_synthetic": figures[name]["synthetic"],
                               "diversity_real": figures[name]["real"],
                               "feature_diversity": _mean_pairwise(feats[mine]) / max(self.real_feature_diversity[c],
                                                                                      1e-8)}
        accuracy = (pred == self.labels).float().mean().item()
        ratios = [v["diversity"] for v in per_class.values() if v["diversity"] is not None]
        diversity = sum(ratios) / len(ratios) if ratios else 0.0
        return {
            "conditional_accuracy": accuracy,
            "diversity": diversity,
            "feature_diversity": sum(v["feature_diversity"] for v in per_class.values()) / len(per_class),
            "score": accuracy * min(1.0, diversity),
            "collapsed": D.collapsed(figures),
            "near_copies": int(copies.sum()),
            "images": len(images),
            "trusted": self.trusted,
            "per_class": per_class,
        }


def worst_diversity(score: dict) -> float:
    """The lowest class's diversity (synthetic / real) in a score; 0 when no class has a figure."""
    ratios = [v["diversity"] for v in score.get("per_class", {}).values() if v.get("diversity") is not None]
    return min(ratios, default=0.0)


def rank(score: dict) -> tuple:
    """Checkpoints ordered by this key, best last: none with near copies of training images before any with
    some (then the fewest); among those, none with a collapsed class before any with one; the clean ones by
    score when the judge is trusted, else by iteration (the latest); the collapsed ones by their worst class's
    diversity (the least collapsed) when the judge is untrusted, else by score. Scores written before near
    copies were counted read as 0 copies."""
    copies = score.get("near_copies") or 0
    trusted = score.get("trusted", True)
    if score.get("diverged"):  # it sampled NaN: any other checkpoint first
        return (-1, score["step"], 0, 0)
    if copies:
        return (0, -copies, worst_diversity(score), score["step"])
    if score.get("collapsed"):
        return (1, score["score"] if trusted else worst_diversity(score), worst_diversity(score), score["step"])
    return (2, score["score"] if trusted else score["step"], score["step"], 0)


def warnings_for(scores: list[dict]) -> list[str]:
    """What a careful user should hear about the training run, from its score history."""
    if not scores:
        return []
    out = []
    best = max(scores, key=rank)
    last = scores[-1]
    trusted = best.get("trusted", True)
    diverged = [s["step"] for s in scores if s.get("diverged")]
    if diverged:
        out.append(f"the generator sampled NaN or infinite values at iteration{'s' if len(diverged) > 1 else ''} "
                   f"{', '.join(map(str, diverged))}: its training diverged there"
                   + (" and never recovered; a lower learning rate, or precision: fp32, may hold it" if best.get("diverged")
                      else f"; the checkpoint of iteration {best['step']} is used"))
        if best.get("diverged"):
            return out
    if trusted and last["score"] < best["score"] - 0.15:
        out.append(
            f"generator score collapsed: best {best['score']:.2f} at iteration {best['step']}, "
            f"{last['score']:.2f} at the end; the best checkpoint is used"
        )
    if best.get("near_copies"):
        out.append(f"every checkpoint drew near copies of training images; the one of iteration {best['step']} "
                   f"({best['near_copies']} of its {best.get('images', '?')} scored images) is used: the audit screens its images (synthetic.drop_copies); train less, or change the generator's "
                   "settings (docs/generators.md)")
    elif best.get("collapsed"):
        which = "best-scoring" if trusted else "least collapsed"
        out.append(f"every checkpoint has a collapsed class; the {which}, of iteration {best['step']} "
                   f"(worst class {worst_diversity(best):.2f}x the real diversity), is used: train longer, or change the "
                   "generator's settings (docs/generators.md)")
    for name, v in best["per_class"].items():
        if v.get("diversity_synthetic") is not None and v["diversity"] is not None and v["diversity"] < D.COLLAPSED:
            out.append(f"selection: class {name} is collapsed at iteration {best['step']}: its images are "
                       f"{v['diversity']:.2f}x as varied as real ones (1 - MS-SSIM between "
                       f"pairs' layouts {v['diversity_synthetic']:.3f}, real {v['diversity_real']:.3f})")
        if trusted and v["accuracy"] < 0.5:
            out.append(f"class {name}: only {100 * v['accuracy']:.0f}% of generated images are recognised as {name}")
    return out
