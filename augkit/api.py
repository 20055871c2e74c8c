"""The library entry points: everything ``augkit run`` does, from Python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augkit.extension.roles import Plugin
from augkit.extension.registry import Registry, get_plugin_manager
from augkit.outputs.progress import Progress, no_progress
from augkit.config.recipe import ResolvedRecipe, load_recipe


def build(role: str, name: str, /, registry: Registry | None = None, **options: Any) -> Plugin:
    """Build a plugin by role and name with validated options.

    >>> gan = augkit.build("generator", "acgan", width=32, image_size=64)

    An unknown name raises ``augkit.PluginError``; bad options a ``ValueError`` naming the plugin,
    each option, the value and the rule.
    """
    from pydantic import ValidationError

    from augkit.config.problems import describe

    registry = registry if registry is not None else get_plugin_manager()
    cls = registry.get(role, name)
    try:  # plugin validators look plugins up where the plugin was found, as in a recipe
        valid = cls.Options.model_validate(options, context={"registry": registry})
    except ValidationError as exc:  # "1 validation error for Options" named neither the plugin nor the role
        raise ValueError(f"{role} {name!r}: " + "; ".join(describe(exc, cls.Options))) from None
    return cls(valid)


def run(recipe: Path | str | dict | ResolvedRecipe, out: Path | str = "runs", *, overrides: list[str] = (),
        progress: Progress = no_progress) -> Path:
    """Run a recipe (a path, a mapping or a loaded recipe) into a new run folder; return it."""
    from augkit.runner import run as run_resolved  # heavy imports only when running

    resolved = recipe if isinstance(recipe, ResolvedRecipe) else load_recipe(recipe, overrides)
    return run_resolved(resolved, out, progress=progress)
