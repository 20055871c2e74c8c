"""What every check of the contract kit shares: the error, the checker that words it, tiny data."""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import torch
from pydantic import ValidationError
from torch import Tensor

from augkit.extension.roles import LabeledImages, Plugin

UNKNOWN_KEY = "augkit_contract_unknown_option"
N_CLASSES = 3


class ContractError(AssertionError):
    """A plugin breaks the augkit contract; the message names the plugin, the check, expected and got."""


class _Checker:
    def __init__(self, cls: Any):  # failures read "<Plugin>: <check>: expected <...>; got <...>"
        self.plugin = getattr(cls, "__name__", repr(cls))

    def expect(self, ok: Any, check: str, expected: str, got: Any = "something else") -> None:
        if not ok:  # ``got`` may be a callable: it is only worked out for the message
            raise ContractError(f"{self.plugin}: {check}: expected {expected}; got {got() if callable(got) else got}")

    def call(self, check: str, fn: Callable[[], Any]) -> Any:
        """``fn()``; an exception it raises becomes a ContractError naming the check."""
        try:
            return fn()
        except ContractError:
            raise
        except Exception as exc:
            raise ContractError(f"{self.plugin}: {check}: raised {type(exc).__name__}: {exc}") from exc

    def same(self, a: Tensor, b: Any, check: str, expected: str, atol: float = 0.0) -> None:
        """``b`` is a tensor like ``a``, equal to it within ``atol``."""
        like = isinstance(b, Tensor) and b.shape == a.shape and b.dtype == a.dtype
        diff = (a.float() - b.float()).abs().max().item() if like and a.numel() else 0.0
        self.expect(like and diff <= atol, check, expected, f"max abs difference {diff:.3g}" if like
                    else f"{type(b).__name__} {tuple(getattr(b, 'shape', ()))} {getattr(b, 'dtype', '')}")


def _build(c: _Checker, cls: Any, role: type[Plugin], options: dict[str, Any]) -> Plugin:
    """The class is a ``role`` whose Options forbid unknown keys; build it as the runner does."""
    c.expect(isinstance(cls, type) and issubclass(cls, role), "class", f"a subclass of augkit.{role.__name__}", repr(cls))
    opts = c.call(f"Options(**{options!r})", lambda: cls.Options(**options))
    check = "Options forbids unknown keys"
    try:
        cls.Options(**{**options, UNKNOWN_KEY: 1})
    except ValidationError as exc:
        errors = exc.errors()
        extra = [e for e in errors if e["type"] == "extra_forbidden" and UNKNOWN_KEY in map(str, e["loc"])]
        c.expect(extra, check, f"an 'extra_forbidden' error for {UNKNOWN_KEY!r}", errors)
    else:
        c.expect(False, check, f"a ValidationError for the unknown key {UNKNOWN_KEY!r} (a misspelt recipe option "
                 f"must not pass silently: subclass augkit.{role.__name__}.Options: extra='forbid')", "no error")
    return c.call("cls(options)", lambda: cls(opts))


def _fits(actual: tuple[int, ...], expected: tuple[int | None, ...]) -> bool:
    return len(actual) == len(expected) and all(e is None or e == a for a, e in zip(actual, expected))


def _labeled_images(channels: int, size: int, per_class: int, seed: int) -> LabeledImages:
    """Noisy images whose brightness gives the class away: learnable, in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(N_CLASSES).repeat(per_class)
    level = torch.linspace(-0.6, 0.6, N_CLASSES)[labels].view(-1, 1, 1, 1)
    images = (level + 0.3 * torch.randn(len(labels), channels, size, size, generator=g)).clamp(-1, 1)
    return LabeledImages(images, labels, ["a", "b", "c"], [f"p{i}" for i in range(len(labels))])


def _check_rows(c: _Checker, rows: list[Any], check: str) -> None:
    """Training log rows: dicts of plain numbers, each with an int "step", steps increasing."""
    c.expect(rows, check, "at least one log row", "none")
    for i, row in enumerate(rows):
        c.expect(isinstance(row, dict), check, "dict log rows", lambda: f"row {i}: {type(row).__name__}")
        step = row.get("step")
        c.expect(isinstance(step, numbers.Integral) and not isinstance(step, bool), check,
                 'every row to have an int "step"', lambda: f"row {i}: {row!r}")
        bad = {k: v for k, v in row.items() if not isinstance(k, str) or not isinstance(v, numbers.Real)}
        c.expect(not bad, check, "str keys and plain numbers as values (.item() a tensor)", lambda: f"row {i}: {bad!r}")
    steps = [r["step"] for r in rows]
    c.expect(all(a < b for a, b in zip(steps, steps[1:])), check, '"step" to increase from row to row', steps)


def _check_tensor(c: _Checker, out: Any, check: str, shape: tuple[int | None, ...], what: str) -> None:
    """A finite float32 tensor of ``shape`` (None: any size)."""
    c.expect(isinstance(out, Tensor), check, "a torch.Tensor", lambda: type(out).__name__)
    c.expect(out.dtype == torch.float32, check, "dtype torch.float32", out.dtype)
    c.expect(_fits(out.shape, shape), check, f"shape {what} = {tuple(s or '*' for s in shape)}", lambda: tuple(out.shape))
    c.expect(torch.isfinite(out).all(), check, "finite values", lambda: f"{int((~torch.isfinite(out)).sum())} NaN/inf")
