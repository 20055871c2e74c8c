"""The typer app and what every command shares: errors, recipe loading, process groups, KEY=VALUE options."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler

# pretty_exceptions_show_locals off: a traceback must never print local variables (lists of patient
# folders, DICOM headers) whatever typer version is installed
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Class-conditional GAN augmentation, measured.")
err = Console(stderr=True)

RecipeArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="recipe YAML file")]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="override a recipe value: KEY.PATH=VALUE (repeatable), e.g. generator.options.iterations=200"),
]


def fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def output_folder(path: Path, option: str = "--out") -> Path:
    """``path`` as a folder, created with its parents if missing; a clear error, not a traceback, when it cannot be."""
    from augkit.outputs.run_folder import OutputFolderError, make_folder

    try:
        return make_folder(path, option)
    except OutputFolderError as exc:
        fail(str(exc))


def load(recipe: Path, overrides: list[str] | None):
    from augkit.extension.registry import PluginError
    from augkit.config.recipe import RecipeError, load_recipe

    try:
        return load_recipe(recipe, overrides or [])
    except (RecipeError, PluginError) as exc:
        fail(str(exc))


@contextmanager
def ranks(device=None):
    """Under torchrun (WORLD_SIZE > 1): this command's process group; a failing rank names itself.

    ``device``: where the command trains (nccl for CUDA, gloo for CPUs). A single process passes
    through untouched.
    """
    import torch

    from augkit.compute import distributed

    try:
        here = distributed.init(device or torch.device("cpu"))
    except distributed.DistributedError as exc:
        fail(str(exc))
    try:
        yield here
    except typer.Exit:
        raise
    except distributed.DistributedError as exc:
        fail(f"rank {here.rank} of {here.size}: {exc}" if here.size > 1 else str(exc))
    except Exception as exc:
        if here.size > 1:  # then stop without leaving the group: a peer may be stuck in a collective
            err.print(f"[bold red]error:[/] augkit: {distributed.failure(exc, here)}", highlight=False, soft_wrap=True)
        raise
    if here.size > 1:
        distributed.close()


def device_of(resolved):
    """The device the recipe's generator trains on (it picks the process group's backend)."""
    try:
        return resolved.build("generator").device
    except RuntimeError as exc:  # e.g. device: cuda without a GPU
        fail(str(exc))


def rank0_output(here) -> None:
    """Log lines and progress bars come from rank 0 only."""
    if here.main:
        logging.getLogger("augkit").addHandler(RichHandler(console=err, show_path=False, show_time=False))


def key_values(flag: str, assignments: list[str]) -> dict:
    """``KEY=VALUE`` pairs (values parsed as YAML) into a mapping; a malformed pair fails naming the flag."""
    import yaml

    raw = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            fail(f"{flag} {assignment!r}: expected KEY=VALUE")
        try:
            raw[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            fail(f"{flag} {assignment!r}: the value is not valid YAML: {exc}")
    return raw


def validated(cls, role: str, name: str, flag: str, options: dict, *, registry=None):
    """``cls.Options`` from ``options``; errors name the flag, the key and the plugin's allowed options.

    ``registry``: the command's one registry, handed to plugin validators as a recipe's is.
    """
    from pydantic import ValidationError

    try:
        return cls.Options.model_validate(options, context=None if registry is None else {"registry": registry})
    except ValidationError as exc:
        allowed = ", ".join(cls.Options.model_fields) or "none"
        fail("; ".join(
            f"{flag} {'.'.join(map(str, e['loc'])) or '(all)'}: "
            + (f"the {name!r} {role} has no such option (its options: {allowed})" if e["type"] == "extra_forbidden"
               else f"{e['msg']} (got {e.get('input')!r})")
            for e in exc.errors()))


def plugin_class(registry, role: str, name: str):
    """A registered plugin class; an unknown name fails with the installed ones and close matches."""
    from augkit.extension.registry import PluginError

    try:
        return registry.get(role, name)
    except PluginError as exc:
        fail(str(exc))
