"""Class labels for files: from a ``path,label`` CSV or from the top-level folder names."""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from augkit.extension.names import check_class_name

from augkit_plugins._files.discovery import FileSourceOptions, is_hidden, relative

log = logging.getLogger("augkit")


class LabelTable:
    """A ``path,label`` CSV: ``path`` is relative to the root and names a file or a folder.

    A file takes the label of the longest listed path that is the file itself or one of its
    folders, so ``patients/p1,virus`` labels everything under ``patients/p1/``.
    """

    def __init__(self, csv_path: Path):
        self.path = csv_path
        self.labels: dict[str, str] = {}
        self.rows: dict[str, int] = {}  # listed path -> CSV line number, for messages
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
            if not {"path", "label"} <= set(columns):
                raise ValueError(
                    f"{csv_path.name} must have the columns 'path' and 'label' (a header row), "
                    f"found {sorted(columns) or 'no header'}"
                )
            for row in reader:
                line = reader.line_num
                raw, label = (row.get(columns["path"]) or "").strip(), (row.get(columns["label"]) or "").strip()
                if not raw and not label:
                    continue
                if not raw or not label:
                    raise ValueError(f"{csv_path.name} line {line}: both 'path' and 'label' are needed")
                check_class_name(label, f"{csv_path.name} line {line}: label")
                rel = self.normalise(raw, csv_path.name, line)
                if self.labels.get(rel, label) != label:
                    raise ValueError(
                        f"{csv_path.name} line {line}: the path on line {self.rows[rel]} is listed again "
                        f"with another label ({self.labels[rel]!r} then {label!r})"
                    )
                self.labels[rel], self.rows[rel] = label, line
        if not self.labels:
            raise ValueError(f"{csv_path.name} has no rows; expected lines 'path,label' after the header")
        self.used: set[str] = set()

    @staticmethod
    def normalise(raw: str, name: str, line: int) -> str:
        posix = PurePosixPath(raw.replace("\\", "/"))
        if posix.is_absolute() or ".." in posix.parts:
            raise ValueError(f"{name} line {line}: 'path' must be relative to root, without '..'")
        return posix.as_posix() if posix.parts else "."

    def lookup(self, rel: str) -> str | None:
        """The label of the file at ``rel`` (relative, posix), or None if the CSV does not cover it."""
        parts = PurePosixPath(rel).parts
        for n in range(len(parts), -1, -1):
            prefix = PurePosixPath(*parts[:n]).as_posix() if n else "."
            if prefix in self.labels:
                self.used.add(prefix)
                return self.labels[prefix]
        return None

    def class_names(self) -> set[str]:
        return set(self.labels.values())

    def report_unused(self, plugin: str) -> None:
        """Warn about rows that matched no file, by line number (paths may name patients)."""
        unused = sorted(self.rows[p] for p in self.labels if p not in self.used)
        if unused:
            shown = ", ".join(map(str, unused[:20])) + (" ..." if len(unused) > 20 else "")
            log.warning("%s: %d rows of %s match no file (lines %s)", plugin, len(unused), self.path.name, shown)


def top_folder(rel: str) -> str | None:
    """The first folder of a relative path (the class, for folder labels); None for a file in root."""
    parts = PurePosixPath(rel).parts
    return parts[0] if len(parts) > 1 else None


def resolve_classes(found: set[str], class_order: list[str] | None, plugin: str) -> list[str]:
    """The class list: ``class_order`` if given (it must cover every label found), else sorted names."""
    if class_order is None:
        return sorted(found)
    unknown = sorted(found - set(class_order))
    if unknown:
        raise ValueError(f"{plugin}: labels {unknown} are not in class_order {class_order}; add them or fix the labels")
    return list(class_order)


class LabelledFileOptions(FileSourceOptions):
    """Options of sources whose labels come from a CSV or from the top-level folder names."""

    labels_from: Literal["csv", "folders"] | None = Field(
        None,
        description=(
            "Where labels come from: 'csv' (labels_csv, columns path,label) or 'folders' (the top-level "
            "folder under root is the class). Default: 'csv' when labels_csv is given, else 'folders'."
        ),
    )
    labels_csv: Path | None = Field(
        None,
        description=(
            "CSV with a header 'path,label'; path is relative to root and names a file or a folder whose "
            "files all get that label. A relative labels_csv is looked up under root, then as given."
        ),
    )
    class_order: list[str] | None = Field(
        None, description="Class names in label-index order. Default: the labels found, sorted by name."
    )

    @field_validator("class_order")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or any(not name.strip() for name in value):
                raise ValueError("class_order must list at least one non-empty class name")
            if len(set(value)) != len(value):
                raise ValueError(f"class_order lists a class twice: {value}")
            for name in value:
                check_class_name(name, "class_order")
        return value

    @model_validator(mode="after")
    def _labels_source(self):
        if self.label_mode == "csv":
            if self.labels_csv is None:
                raise ValueError("labels_from is 'csv' but labels_csv is not given; give the CSV's path")
            if self.csv_path is None:
                raise ValueError(f"labels_csv {self.labels_csv} is not a file; give a CSV with columns path,label")
        elif self.labels_csv is not None:
            raise ValueError("labels_csv is given but labels_from is 'folders'; drop one of them")
        return self

    @property
    def label_mode(self) -> Literal["csv", "folders"]:
        """``labels_from``, or its default: 'csv' when ``labels_csv`` is given, else 'folders'."""
        return self.labels_from or ("csv" if self.labels_csv is not None else "folders")

    @property
    def csv_path(self) -> Path | None:
        """The labels CSV: a relative ``labels_csv`` under ``root`` first (the data's own), else as given
        (relative to the current folder); None if neither is a file."""
        if self.labels_csv is None:
            return None
        path = Path(self.labels_csv).expanduser()
        if not path.is_absolute() and (self.root / path).is_file():
            return self.root / path
        return path if path.is_file() else None


def check_patient_regex(value: str | None) -> str | None:
    """A patient regex must compile and capture the id: a group named 'patient', or one group."""
    if value is None:
        return None
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ValueError(f"patient_regex {value!r} is not a valid regular expression: {exc}") from None
    if pattern.groups < 1:
        raise ValueError(f"patient_regex {value!r} needs a group that captures the patient id, e.g. '^(\\w+?)_'")
    return value


def patient_from(name: str, regex: str | None) -> str | None:
    """The patient id that ``regex`` captures in ``name``, or None (no regex or no match)."""
    match = None if regex is None else re.search(regex, name)
    if match is None:
        return None
    return (match.group("patient") if "patient" in match.re.groupindex else match.group(1)) or None


def label_files(
    options: LabelledFileOptions, files: list[Path], plugin: str, layout: str, *, warn: bool = True
) -> tuple[list[str], list[tuple[Path, str, str]]]:
    """Classes and ``(path, relative path, class)`` of every labelled file among ``files``.

    Files the labels do not cover are left out (one info line says how many). A class with no
    file is still listed, with a warning; no labelled file at all is an error naming ``layout``.
    """
    root = options.root
    csv_path = options.csv_path if options.label_mode == "csv" else None
    table = None if csv_path is None else LabelTable(csv_path)
    labelled, unlabelled = [], 0
    for path in files:
        rel = relative(path, root)
        label = table.lookup(rel) if table is not None else top_folder(rel)
        if label is None:
            unlabelled += 1
        else:
            labelled.append((path, rel, label))
    if table is not None:
        found = table.class_names()
    else:
        found = {p.name for p in root.iterdir() if p.is_dir() and not is_hidden(p.name)}
    classes = resolve_classes(found | {label for *_, label in labelled}, options.class_order, plugin)
    if not labelled:
        source = f"the labels in {csv_path.name}" if csv_path is not None else "a class folder"
        raise ValueError(f"no usable files in {root} under {source}: expected {layout}")
    if warn:
        if table is not None:
            table.report_unused(plugin)
        if unlabelled:
            what = f"rows of {csv_path.name}" if csv_path is not None else "class folders"
            log.info("%s: %d files are outside the %s and were not read", plugin, unlabelled, what)
        counts = Counter(label for *_, label in labelled)
        for name in classes:
            if not counts[name]:
                log.warning("%s: class %r has no files", plugin, name)
    return classes, labelled
