"""The study's training-data regimes, as one typed table.

A regime names what a classifier of the study trains on (validation and test are always the real
splits). Everything that reads a regime name reads it through this table: the recipe's
``evaluation.regimes`` accepts the names here, :func:`augkit.stages.study.synthetic_needs` counts
what each adds, :func:`augkit.stages.study.regime_data` builds its training set from the fields
below, and the report draws the ratio sweep. Adding a regime is one entry in :data:`REGIMES`.

``fake+real@R`` (one per value of ``evaluation.ratios``) is a *ratio family*: one entry (its
``synthetic`` is ``"ratio"``) for every ratio; :func:`parse` reads the ratio from the name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Synthetic = Literal["none", "per_class", "added", "ratio"]


@dataclass(frozen=True)
class RegimeSpec:
    """One training-data regime.

    ``synthetic`` is what the regime adds to its training set, per class:

    * ``none``: nothing;
    * ``per_class``: the recipe's ``synthetic.per_class`` (or ``multiplier`` x the largest real class);
    * ``added``: the same, or with ``synthetic.balance`` just what balances the classes;
    * ``ratio``: R x (real training count) spread evenly over the classes (a ratio family ``name@R``).
    """

    name: str  # as the recipe lists it; a ratio family's ends in "@R"
    description: str
    uses_real: bool  # the real training split is part of the training set
    synthetic: Synthetic = "none"
    classic: bool = False  # what it adds are classically augmented copies of real images, not synthetic ones
    oversample: bool = False  # the real images are oversampled (minority images repeated) until the classes balance
    also_classic: bool = False  # and as many classically augmented copies of real images as it adds synthetic ones
    is_control: bool = False  # the baseline every other regime is compared with (vs real; ratio 0 of the sweep)
    controls: tuple[str, ...] = ()  # the matched controls it is compared with too, when the run trains them
    default: bool = True  # in evaluation.regimes when a recipe does not list them

    def at(self, ratio: float) -> str:
        """The regime name of one ratio of this family: ``fake+real@R`` -> ``fake+real@2``."""
        if self.synthetic != "ratio":
            raise ValueError(f"regime {self.name!r} is not a ratio family")
        return f"{self.name.removesuffix('@R')}@{ratio:g}"


# the controls that match a synthetic regime's extra training images (and, under evaluation.budget: steps,
# its optimizer steps) without a generator: what a reviewer compares synthetic augmentation with
MATCHED = ("real+classic", "real+oversample")

REGIMES: dict[str, RegimeSpec] = {spec.name: spec for spec in (
    RegimeSpec("real", "the real training split", uses_real=True, is_control=True),
    RegimeSpec("fake", "synthetic images only", uses_real=False, synthetic="per_class"),
    RegimeSpec("fake+real", "real plus synthetic images", uses_real=True, synthetic="added", controls=MATCHED),
    RegimeSpec("real+classic", "real plus classically augmented copies of real images (shifts, small rotations and "
               "zooms, intensity)", uses_real=True, synthetic="added", classic=True),
    RegimeSpec("real+oversample", "real plus repeated minority images until the classes balance", uses_real=True,
               oversample=True),
    RegimeSpec("fake+real+classic", "real plus synthetic images plus as many classically augmented copies of real "
               "images: do synthetic images add anything on top of classical augmentation?", uses_real=True,
               synthetic="added", also_classic=True, controls=("real+classic",)),
    RegimeSpec("fake+real@R", "real plus R x (real count) synthetic images, spread evenly over the classes",
               uses_real=True, synthetic="ratio", controls=MATCHED),
)}

# the family evaluation.ratios adds, one regime per ratio
SWEEP = "fake+real@R"


def named() -> tuple[str, ...]:
    """The regimes a recipe lists by name in ``evaluation.regimes`` (every one but the ratio families), in table order."""
    return tuple(name for name, spec in REGIMES.items() if spec.synthetic != "ratio")


def defaults() -> list[str]:
    """``evaluation.regimes`` when a recipe does not list them."""
    return [name for name in named() if REGIMES[name].default]


def control() -> str:
    """The regime the others are compared with."""
    return next(name for name, spec in REGIMES.items() if spec.is_control)


def comparisons(regimes: list[str]) -> list[tuple[str, str]]:
    """The (regime, reference) pairs a study with these regimes compares: every regime with the control
    (``real``), then every regime with each of its matched controls the study trains, in ``regimes`` order."""
    reference = control()
    pairs = [(r, reference) for r in regimes if r != reference and reference in regimes]
    pairs += [(r, c) for r in regimes for c in parse(r)[0].controls if c in regimes]
    return pairs


def uses_synthetic(name: str) -> bool:
    """Whether the regime trains on generated images."""
    spec, _ = parse(name)
    return spec.synthetic != "none" and not spec.classic


def parse(name: str) -> tuple[RegimeSpec, float | None]:
    """A regime name -> (its entry, its ratio or None): ``fake+real@2`` -> (the ``fake+real@R`` entry, 2.0)."""
    if "@" in name:
        family, ratio = name.split("@", 1)
        spec = REGIMES.get(f"{family}@R")
        if spec is not None and spec.synthetic == "ratio":
            return spec, float(ratio)
    elif name in REGIMES and REGIMES[name].synthetic != "ratio":
        return REGIMES[name], None
    raise ValueError(f"unknown regime {name!r}; regimes are: {', '.join(REGIMES)} (R: a positive ratio, e.g. 2)")
