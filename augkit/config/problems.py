"""Pydantic validation errors as augkit words them: the key path, the bad value and what is allowed."""

from __future__ import annotations

import difflib
import typing

from pydantic import BaseModel, ValidationError


def describe(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per error: ``<prefix>.<key path>: <what is wrong> (got <value>)``; an unknown key gets the close
    matches and the keys allowed where it stands."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        path = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(loc)) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = model_at(model, loc[:-1])
            allowed = sorted(parent.model_fields) if parent else []
            msg = f"{path}: unknown key"
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=2, cutoff=0.5)
            if close:
                msg += f"; did you mean {' or '.join(close)}?"
            if allowed:
                msg += f" Allowed keys: {', '.join(allowed)}."
        elif err["type"] == "missing":
            msg = f"{path}: required, but missing"
        else:
            msg = f"{path}: {err['msg']} (got {err.get('input')!r})"
        problems.append(msg)
    return problems


def model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model that ``loc`` (a path of field names) leads to inside ``model``, or None."""
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model
