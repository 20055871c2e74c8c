"""The recipe: YAML in, a validated, typed, fully resolved configuration out.

Validation covers every plugin's options too, so a typo fails in milliseconds, before
any data is read or any network is trained. Errors name the key path, the bad value and
what is allowed.
"""

from __future__ import annotations

import functools
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from augkit.config import regimes as regime_table
from augkit.config.defaults import DEFAULT_PLUGINS
from augkit.extension.registry import PluginError, Registry, get_plugin_manager
from augkit.config.problems import describe
from augkit.extension.roles import FeatureExtractor, Plugin

# the names evaluation.regimes takes, from augkit.config.regimes (for the reference and type checkers;
# validation reads the table itself, see EvaluationSpec._known)
Regime = Literal[regime_table.named()]

# Recipe keys shared with every plugin whose Options declare a field of the same name, in the
# sections that work on preprocessed images (a dataset's own image_size is its native size).
SHARED_KEYS = ("image_size", "channels", "precision", "device")
SHARED_SECTIONS = ("preprocessor", "generator", "classifier")


class RecipeError(ValueError):
    """The recipe is invalid; ``str(err)`` lists every problem, one per line."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        head = f"invalid recipe {source}" if source else "invalid recipe"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in problems))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PluginSpec(Strict):
    name: str = Field(description="the registered plugin name (see `augkit plugins`)")
    options: dict[str, Any] = Field(default_factory=dict, description="the plugin's own options")


class SplitSpec(Strict):
    mode: Literal["patients", "source"] = Field(
        "patients",
        description="patients: a fresh stratified split by patient; source: keep the dataset's own test split "
        "(e.g. Kaggle's test/ folder) and carve validation out of the rest by patient",
    )
    val: float = Field(0.15, gt=0, lt=1, description="fraction of patients for validation")
    test: float = Field(0.2, gt=0, lt=1, description="fraction of patients for the test split (mode: patients)")


class SyntheticSpec(Strict):
    per_class: int | None = Field(
        None, ge=1, description="synthetic images per class; default: multiplier x the largest real class"
    )
    multiplier: float = Field(1.0, gt=0, description="used when per_class is not set")
    balance: bool = Field(
        False, description="fake+real (and real+classic) add exactly what balances the classes, instead of per_class"
    )
    batch_size: int = Field(64, ge=1, description="images generated per batch")


class SelectionSpec(Strict):
    enabled: bool = Field(True, description="score the generator at every checkpoint and keep the best one")
    per_class: int = Field(32, ge=2, description="images generated per class for each score")
    judge_steps: int = Field(1000, ge=1, description="training steps of the small real-data judge classifier")


class EvaluationSpec(Strict):
    regimes: list[Regime] = Field(
        default_factory=regime_table.defaults,
        min_length=1,
        description="training data regimes (see augkit.stages.study)",
    )
    ratios: list[float] = Field(
        default_factory=list, description="synthetic:real ratio sweep, e.g. [0.5, 1, 2, 4]: adds regimes fake+real@R"
    )
    seeds: int = Field(3, ge=1, le=50, description="classifier trainings per regime, seeds seed .. seed+seeds-1")
    generator_seeds: int = Field(
        1, ge=1, le=20, description="generator trainings (seeds seed, seed+1000, ...): every synthetic regime trains its "
        "classifiers on each one's images, so the verdict covers generator variance; 1: it does not, and the report "
        "says so")
    budget: Literal["steps", "epochs"] = Field(
        "steps", description="steps: every regime trains for the optimizer steps the classifier's epochs take on the "
        "real training split (larger training sets get no more steps); epochs: every regime the same epochs (the "
        "paper; larger sets get more steps). Early stopping on validation within it either way")
    bootstrap: int = Field(2000, ge=100, le=100_000, description="cluster-bootstrap resamples of the test patients "
                           "behind every interval and p-value (docs/evaluation.md)")
    workers: int | Literal["auto"] = Field(
        "auto", description="classifier trainings run side by side in this many processes of one thread each (in one "
        "process; under torchrun each rank trains its share alone); auto: one per CPU core when training on the CPU "
        "(2 cores: 1.3-1.4x the trainings per hour of one process with 2 threads), 1 with a GPU. Same numbers for the "
        "same value: each training is seeded on its own and runs on one thread")
    head_start: Literal["generator", "audit", "none"] = Field(
        "audit", description="side by side on the CPU (workers above 1), when the trainings on real data only (real, "
        "real+classic, real+oversample), which need no synthetic image, start in one worker, this process then running "
        "on one core fewer: audit: when the audit does (its classifier trains on one thread anyway); generator: when "
        "the generator does (pays where the generator gains little from its last core: benchmarks/overlap.py); none: "
        "with the study. Their numbers are the same either way; the generator's thread count (generator) may round "
        "differently (docs/evaluation.md)")
    distribute: Literal["auto", "jobs", "ddp"] = Field(
        "auto", description="under torchrun: jobs: each process trains whole classifiers, its share of the (regime, "
        "seed) trainings; ddp: every training runs over all processes (DDP); auto: jobs when there are at least as "
        "many trainings as processes (or the classifier cannot train over several), else ddp. Ignored in one process"
    )

    @field_validator("head_start", mode="before")
    @classmethod
    def _head_start(cls, v: Any) -> Any:
        return "none" if v is False else v  # YAML reads none's synonyms off / false / no as False

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int | str) -> int | str:
        if v != "auto" and v < 1:
            raise ValueError(f"workers must be at least 1 (1: one training at a time), or auto; got {v}")
        return v

    @field_validator("ratios")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(r <= 0 for r in v):
            raise ValueError(f"ratios must be positive, got {v}")
        return v

    @field_validator("regimes", mode="wrap")
    @classmethod
    def _known(cls, v: Any, handler) -> list[str]:
        """The names of augkit.config.regimes as it stands (a regime added to the table is accepted), not as imported."""
        return _regime_list(regime_table.named(), tuple(cls.model_fields["regimes"].metadata)).validate_python(v)

    @field_validator("regimes")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"a regime is listed twice: {v}")
        return v

    def all_regimes(self) -> list[str]:
        sweep = regime_table.REGIMES[regime_table.SWEEP]
        return [*self.regimes, *(sweep.at(r) for r in self.ratios)]


@functools.cache
def _regime_list(names: tuple[str, ...], constraints: tuple) -> TypeAdapter:
    """``list[Regime]`` with today's names and the field's constraints (min_length)."""
    return TypeAdapter(Annotated[list[Literal[names]], *constraints])


class AuditSpec(Strict):
    enabled: bool = Field(True, description="audit the synthetic images (fidelity, label faithfulness, memorisation; "
                          "see docs/audit.md) before they are exported or used")
    k: int = Field(5, ge=1, le=50, description="nearest neighbours for precision / recall / density / coverage")
    repeats: int = Field(10, ge=2, le=200, description="random 80% subsets behind each fidelity mean and std")
    copy_quantile: float = Field(
        0.01, gt=0, lt=0.5, description="near-copy threshold: this quantile of held-out real images' distances to "
        "the training set ..."
    )
    copy_margin: float = Field(0.5, gt=0, le=1, description="... times this margin, in pixel and in feature space")
    drop_copies: bool = Field(False, description="leave near copies out of the exported set and the study "
                              "(replacements are generated)")
    drop_unfaithful: bool = Field(False, description="leave out images the real-trained classifier assigns to "
                                  "another class than requested (replacements are generated)")
    pairs: int = Field(8, ge=0, le=64, description="closest synthetic / training pairs shown in the report")


class Recipe(Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="run folder prefix")
    seed: int = Field(0, ge=0, description="seeds splitting, training and sampling")
    image_size: int = Field(112, ge=8, le=1024, description="side of the square images every stage works on")
    channels: Literal[1, 3] = Field(1, description="1 (grayscale) or 3; the paper uses 3")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="numeric precision of the networks that train (bf16 autocast or fp32); auto: bf16 where the "
        "hardware has it and the plugin measured that it pays (docs/benchmarks.md)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where networks train; auto: the GPU if any")
    cache_dir: Path | None = Field(None, description="preprocessing cache; default: <out>/.cache")
    strict: bool = Field(False, description="stop at the first unreadable image instead of skipping it")
    workers: int | None = Field(None, ge=1, description="preprocessing processes; default: all cores")
    preview: int = Field(
        0, ge=0, le=64, description="write preprocessing.png: this many raw images beside their preprocessed form"
    )
    checkpoint_every: int = Field(500, ge=1, description="generator iterations between checkpoints")
    dataset: PluginSpec
    preprocessor: PluginSpec = Field(default_factory=lambda: PluginSpec(name=DEFAULT_PLUGINS["preprocessor"]))
    split: SplitSpec = Field(default_factory=SplitSpec)
    generator: PluginSpec = Field(default_factory=lambda: PluginSpec(name=DEFAULT_PLUGINS["generator"]))
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    synthetic: SyntheticSpec = Field(default_factory=SyntheticSpec)
    exporter: PluginSpec = Field(default_factory=lambda: PluginSpec(name=DEFAULT_PLUGINS["exporter"]))
    classifier: PluginSpec = Field(default_factory=lambda: PluginSpec(name=DEFAULT_PLUGINS["classifier"]))
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    feature_extractor: PluginSpec = Field(
        default_factory=lambda: PluginSpec(name=DEFAULT_PLUGINS["feature_extractor"]),
        description="the audit's feature space (see `augkit plugins`)",
    )
    audit: AuditSpec = Field(default_factory=AuditSpec)


ROLE_OF_SECTION = {
    "dataset": "dataset",
    "preprocessor": "preprocessor",
    "generator": "generator",
    "classifier": "classifier",
    "exporter": "exporter",
    "feature_extractor": "feature_extractor",  # after classifier: it may take the classifier's resolved options
}


class ResolvedRecipe:
    """A validated recipe plus the validated options object of each plugin, and the registry they came from.

    ``registry`` is the one registry of everything done with this recipe: its plugin classes, the
    plugin validators that look plugins up (through pydantic's validation context) and the run's
    environment record.
    """

    def __init__(self, recipe: Recipe, plugins: dict[str, tuple[type[Plugin], BaseModel]], registry: Registry):
        self.recipe = recipe
        self.plugins = plugins  # section -> (class, options)
        self.registry = registry

    def build(self, section: str) -> Plugin:
        cls, options = self.plugins[section]
        return cls(options)

    def with_seed(self, seed: int) -> ResolvedRecipe:
        """The same recipe with another ``seed`` (an extra generator training of evaluation.generator_seeds)."""
        return ResolvedRecipe(self.recipe.model_copy(update={"seed": seed}), self.plugins, self.registry)

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved recipe, every default included: what `recipe.yaml` in a run holds."""
        data = self.recipe.model_dump(mode="json")
        for section, (_, options) in self.plugins.items():
            data[section]["options"] = options.model_dump(mode="json")
        return data


def set_path(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``--set a.b.c=value`` override (value parsed as YAML) to raw recipe data."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise RecipeError([f"--set {assignment!r}: expected KEY.PATH=VALUE, e.g. generator.options.iterations=200"])
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError([f"--set {assignment!r}: {part!r} is not a mapping in this recipe"])
    node[parts[-1]] = yaml.safe_load(raw)


def load_yaml(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError([f"{path}: no such file"]) from None
    except yaml.YAMLError as exc:
        raise RecipeError([f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RecipeError([f"{path}: the recipe must be a YAML mapping (key: value), got {type(data).__name__}"])
    return data


def load_recipe(
    source: Path | str | dict[str, Any],
    overrides: list[str] = (),
    registry: Registry | None = None,
) -> ResolvedRecipe:
    """Read and validate a recipe (a path or an already-parsed mapping), plugins included.

    ``registry`` (default: a fresh :func:`get_plugin_manager`) is where every plugin is looked up,
    plugin validators included: each plugin's options are validated with
    ``context={"registry": registry}``. The result keeps it as ``ResolvedRecipe.registry``.
    """
    label = None
    if isinstance(source, dict):
        data = typing.cast(dict[str, Any], yaml.safe_load(yaml.safe_dump(source)))  # deep copy
    else:
        label = str(source)
        data = load_yaml(Path(source))
    for assignment in overrides:
        set_path(data, assignment)
    for section, name in DEFAULT_PLUGINS.items():
        if isinstance(data.get(section), dict):
            data[section].setdefault("name", name)
    registry = registry if registry is not None else get_plugin_manager()
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:  # with what the plugins say of their own options: every problem at once
        raise RecipeError(describe(exc, Recipe) + _raw_plugin_problems(data, registry), label) from None

    problems: list[str] = []
    plugins: dict[str, tuple[type[Plugin], BaseModel]] = {}
    for section, role in ROLE_OF_SECTION.items():
        spec: PluginSpec = getattr(recipe, section)
        try:
            cls = registry.get(role, spec.name)
        except PluginError as exc:
            problems.append(f"{section}.name: {exc}")
            continue
        options = dict(spec.options)
        for key in SHARED_KEYS if section in SHARED_SECTIONS else ():
            if key in cls.Options.model_fields:
                shared = getattr(recipe, key)
                if key in options and options[key] != shared:
                    problems.append(
                        f"{section}.options.{key}: {options[key]!r} differs from the recipe's {key}: {shared!r}; "
                        f"set {key} once at the top of the recipe"
                    )
                options[key] = shared
        if section == "feature_extractor":
            problem = _inherit_classifier(options, cls, recipe, plugins)
            if problem:
                problems.append(problem)
                continue
        try:
            plugins[section] = (cls, cls.Options.model_validate(options, context={"registry": registry}))
        except ValidationError as exc:
            problems.extend(describe(exc, cls.Options, prefix=f"{section}.options"))
        if section == "classifier" and recipe.evaluation.budget == "steps" and not cls.trains_to_budget():
            problems.append(f"evaluation.budget: 'steps', but the {spec.name!r} classifier cannot train to a step "
                            "budget (it does not implement budget_steps): set evaluation.budget: epochs")
    if problems:
        raise RecipeError(problems, label)
    return ResolvedRecipe(recipe, plugins, registry)


def _inherit_classifier(options: dict[str, Any], cls: type[FeatureExtractor], recipe: Recipe, plugins: dict
                        ) -> str | None:
    """An extractor declaring ``classifier_fields`` trains the recipe's classifier unless told otherwise.

    Returns a problem when the declared fields are not options of the extractor.
    """
    fields = cls.classifier_fields
    if fields is None or "classifier" not in plugins:  # the classifier section has its own error already
        return None
    missing = [f for f in fields if f not in cls.Options.model_fields]
    if missing:
        return (f"feature_extractor.name: {recipe.feature_extractor.name!r} declares classifier_fields {fields}, "
                f"but its options have no {', '.join(missing)}")
    name_field, options_field = fields
    if options.get(name_field) is None:
        options[name_field] = recipe.classifier.name
    if options.get(options_field) is None and options.get(name_field) == recipe.classifier.name:
        options[options_field] = plugins["classifier"][1].model_dump(mode="json")
    return None


def _raw_plugin_problems(data: dict[str, Any], registry: Registry) -> list[str]:
    """Plugin option problems of a recipe that failed its own validation (best effort: errors of the keys the
    recipe shares with its plugins, and the feature extractor, are left to a recipe that validates)."""
    problems = []
    for section, role in ROLE_OF_SECTION.items():
        spec = data.get(section)
        if section == "feature_extractor" or not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            continue
        try:
            cls = registry.get(role, spec["name"])
        except PluginError as exc:
            problems.append(f"{section}.name: {exc}")
            continue
        options = dict(spec.get("options")) if isinstance(spec.get("options"), dict) else {}
        for key in SHARED_KEYS if section in SHARED_SECTIONS else ():
            if key in cls.Options.model_fields:  # as a recipe that validates passes them; their errors are the recipe's
                options[key] = data.get(key, Recipe.model_fields[key].default)
        try:
            cls.Options.model_validate(options, context={"registry": registry})
        except ValidationError as exc:
            problems += [p for p, err in zip(describe(exc, cls.Options, prefix=f"{section}.options"), exc.errors())
                         if not (err["loc"] and err["loc"][0] in SHARED_KEYS)]
        except Exception:  # a plugin validator that needs the whole recipe: its word comes when the rest validates
            continue
    return problems
