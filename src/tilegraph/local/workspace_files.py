"""A workspace directory, as `tilegraph export` writes it and `tilegraph apply` reads it:
cards and transforms as code plus YAML, dashboards (with their filter views) as YAML.

Pure: specs in, file bytes out, and back. What is written is deterministic and holds no
ids, timestamps or versions, so two exports of the same workspace (on any server) are the
same bytes, and a review shows only what a person changed. Keys come in a fixed order
(key and name first); user JSON (params, filter state) is sorted; lists keep their order."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tilegraph.domain.validation import MAX_WORKSPACE_KEY_CHARS, WORKSPACE_KEY

CARDS, TRANSFORMS, DASHBOARDS = "cards", "transforms", "dashboards"
# The code of a TEXT card is text/HTML, not Python: its file says so.
CODE_SUFFIX = {"CODE": ".py", "TEXT": ".html"}


class WorkspaceFileError(ValueError):
    """A file of the directory that cannot be read as a workspace, with where and why."""


@dataclass(frozen=True)
class CardSpec:
    key: str
    name: str
    type: str
    code: str
    datasets: tuple[str, ...]
    description: str | None = None
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class TransformSpec:
    key: str
    name: str
    code: str
    inputs: tuple[str, ...]
    schedule_cron: str | None = None
    schedule_enabled: bool = False
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class LayoutItemSpec:
    card: str  # the card's workspace key
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class FilterSpec:
    id: str
    type: str
    column: str
    label: str
    multi_select: bool = False
    options: tuple[str, ...] | None = None


@dataclass(frozen=True)
class FilterViewSpec:
    name: str
    filter_state: dict[str, Any]
    is_shared: bool = False
    is_default: bool = False


@dataclass(frozen=True)
class DashboardSpec:
    key: str
    name: str
    description: str | None = None
    columns: int = 12
    row_height: int = 100
    items: tuple[LayoutItemSpec, ...] = ()
    filters: tuple[FilterSpec, ...] = ()
    views: tuple[FilterViewSpec, ...] = ()

    @property
    def layout(self) -> tuple[int, int, tuple[LayoutItemSpec, ...]]:
        return (self.columns, self.row_height, self.items)


@dataclass(frozen=True)
class Workspace:
    cards: dict[str, CardSpec] = field(default_factory=dict)
    transforms: dict[str, TransformSpec] = field(default_factory=dict)
    dashboards: dict[str, DashboardSpec] = field(default_factory=dict)

    def dataset_names(self) -> list[str]:
        """Every dataset the workspace reads, by name, sorted."""
        names = {n for c in self.cards.values() for n in c.datasets}
        names |= {n for t in self.transforms.values() for n in t.inputs}
        return sorted(names)


def changed_fields(old: Any, new: Any, *, ignore: Iterable[str] = ()) -> list[str]:
    """The fields of two specs of one kind that differ, in declaration order."""
    skipped = set(ignore)
    return [
        f.name
        for f in fields(old)
        if f.name not in skipped and getattr(old, f.name) != getattr(new, f.name)
    ]


# ---------------------------------------------------------------- keys


def slugify(name: str, fallback: str) -> str:
    """A workspace key made from a name: ASCII lower case, runs of anything else as one
    '-', at most the key's length less room for a de-duplicating suffix."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_name.lower()).strip("-_")
    slug = slug[: MAX_WORKSPACE_KEY_CHARS - 10].rstrip("-_")
    return slug or fallback


@dataclass(frozen=True)
class Keyed:
    """What key assignment needs to know of an object."""

    id: str
    name: str
    created_at: datetime
    key: str | None


def assign_keys(objects: Iterable[Keyed], fallback: str) -> dict[str, str]:
    """A key for every object (by id): its own when it has one; otherwise its slugified
    name, the oldest object (then the smallest id) first, with -2, -3 … after a taken one."""
    items = list(objects)
    taken = {o.key for o in items if o.key}
    keys = {o.id: o.key for o in items if o.key}
    for obj in sorted((o for o in items if not o.key), key=lambda o: (o.created_at, o.id)):
        base = slugify(obj.name, fallback)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}-{n}"
        taken.add(candidate)
        keys[obj.id] = candidate
    return keys


def is_key(value: object) -> bool:
    return isinstance(value, str) and bool(WORKSPACE_KEY.match(value))


# ---------------------------------------------------------------- rendering


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Text with line breaks as a literal block, which diffs line by line."""
    style = "|" if "\n" in value.rstrip("\n") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


# The safe dumper, with that one change (made by type() so PyYAML's own class is untouched).
_Dumper = type("_Dumper", (yaml.SafeDumper,), {})
yaml.add_representer(str, _str, Dumper=_Dumper)


def _sorted(value: Any) -> Any:
    """User JSON with its object keys sorted, at every depth (lists keep their order)."""
    if isinstance(value, Mapping):
        return {str(k): _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_sorted(v) for v in value]
    return value


def _dump(document: dict[str, Any]) -> bytes:
    text = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )
    return str(text).encode()


def _without_none(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


def filter_fields(definition: FilterSpec) -> dict[str, Any]:
    """A dashboard filter as FilterDefinitionInput has it (and, without its nulls, as a
    dashboard file writes it)."""
    return {
        "id": definition.id,
        "type": definition.type,
        "column": definition.column,
        "label": definition.label,
        "multiSelect": definition.multi_select,
        "options": list(definition.options) if definition.options is not None else None,
    }


def card_document(card: CardSpec) -> dict[str, Any]:
    return _without_none(
        {
            "key": card.key,
            "name": card.name,
            "description": card.description,
            "type": card.type,
            "datasets": list(card.datasets),
            "params": _sorted(card.params) if card.params is not None else None,
        }
    )


def transform_document(transform: TransformSpec) -> dict[str, Any]:
    schedule = None
    if transform.schedule_cron is not None:
        schedule = {"cron": transform.schedule_cron, "enabled": transform.schedule_enabled}
    return _without_none(
        {
            "key": transform.key,
            "name": transform.name,
            "inputs": list(transform.inputs),
            "schedule": schedule,
            "params": _sorted(transform.params) if transform.params is not None else None,
        }
    )


def dashboard_document(dashboard: DashboardSpec) -> dict[str, Any]:
    return _without_none(
        {
            "key": dashboard.key,
            "name": dashboard.name,
            "description": dashboard.description,
            "layout": {
                "columns": dashboard.columns,
                "rowHeight": dashboard.row_height,
                "items": [
                    {"card": i.card, "x": i.x, "y": i.y, "w": i.w, "h": i.h}
                    for i in dashboard.items
                ],
            },
            "filters": [_without_none(filter_fields(f)) for f in dashboard.filters],
            "filterViews": [
                {
                    "name": v.name,
                    "filterState": _sorted(v.filter_state),
                    "isShared": v.is_shared,
                    "isDefault": v.is_default,
                }
                for v in sorted(dashboard.views, key=lambda v: v.name)
            ],
        }
    )


def render_workspace(workspace: Workspace) -> dict[str, bytes]:
    """Every file of the directory, by its path relative to the directory."""
    files: dict[str, bytes] = {}
    for key, card in sorted(workspace.cards.items()):
        files[f"{CARDS}/{key}.yaml"] = _dump(card_document(card))
        files[f"{CARDS}/{key}{CODE_SUFFIX.get(card.type, '.py')}"] = card.code.encode()
    for key, transform in sorted(workspace.transforms.items()):
        files[f"{TRANSFORMS}/{key}.yaml"] = _dump(transform_document(transform))
        files[f"{TRANSFORMS}/{key}.py"] = transform.code.encode()
    for key, dashboard in sorted(workspace.dashboards.items()):
        files[f"{DASHBOARDS}/{key}.yaml"] = _dump(dashboard_document(dashboard))
    return files


def write_workspace(directory: Path, workspace: Workspace) -> list[str]:
    """Writes the files (only those whose bytes changed) and removes the workspace files
    of objects that are gone; returns the paths written or removed."""
    files = render_workspace(workspace)
    touched = []
    for sub in (CARDS, TRANSFORMS, DASHBOARDS):
        folder = directory / sub
        folder.mkdir(parents=True, exist_ok=True)  # even empty: the directory is a workspace
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                relative = f"{sub}/{path.name}"
                ours = path.is_file() and path.suffix in (".yaml", ".py", ".html")
                if ours and relative not in files:
                    path.unlink()
                    touched.append(relative)
    for relative, content in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != content:
            path.write_bytes(content)
            touched.append(relative)
    return touched


# ---------------------------------------------------------------- reading


class _Reader:
    """One YAML document, with errors that name its file and the entry."""

    def __init__(self, path: Path, document: Any, allowed: set[str], required: set[str]):
        self.path = path
        if not isinstance(document, dict):
            self.fail("expected a mapping of fields")
        unknown = sorted(set(document) - allowed)
        if unknown:
            self.fail(f"unknown field(s) {', '.join(map(str, unknown))}")
        missing = sorted(required - set(document))
        if missing:
            self.fail(f"missing field(s) {', '.join(missing)}")
        self.document: dict[str, Any] = document

    def fail(self, message: str) -> Any:
        raise WorkspaceFileError(f"{self.path}: {message}")

    def text(self, name: str, *, optional: bool = False) -> Any:
        value = self.document.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            self.fail(f"`{name}` must be text")
        return value

    def integer(self, document: dict[str, Any], name: str, default: int | None = None) -> int:
        value = document.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise WorkspaceFileError(f"{self.path}: `{name}` must be a whole number")
        return value

    def flag(self, document: dict[str, Any], name: str) -> bool:
        value = document.get(name, False)
        if not isinstance(value, bool):
            raise WorkspaceFileError(f"{self.path}: `{name}` must be true or false")
        return value

    def names(self, name: str) -> tuple[str, ...]:
        value = self.document.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(f"`{name}` must be a list of dataset names")
        return tuple(value)

    def params(self) -> dict[str, Any] | None:
        value = self.document.get("params")
        if value is not None and not isinstance(value, dict):
            self.fail("`params` must be a mapping")
        return value

    def key(self) -> str:
        key = self.text("key")
        if not is_key(key):
            self.fail(f"`key` {key!r} must be 1 to 100 lower-case letters, digits, '-' or '_'")
        if key != self.path.stem:
            self.fail(f"`key` {key!r} must match the file name ({self.path.stem})")
        return str(key)


def _load(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WorkspaceFileError(f"{path}: not valid YAML: {exc}") from exc


def _code(path: Path) -> str:
    if not path.is_file():
        raise WorkspaceFileError(f"{path}: missing (the code of {path.stem})")
    return path.read_bytes().decode("utf-8")


def _card(path: Path) -> CardSpec:
    reader = _Reader(
        path,
        _load(path),
        {"key", "name", "description", "type", "datasets", "params"},
        {"key", "name", "type"},
    )
    card_type = reader.text("type")
    if card_type not in CODE_SUFFIX:
        reader.fail(f"`type` must be one of {', '.join(CODE_SUFFIX)}")
    key = reader.key()
    return CardSpec(
        key=key,
        name=reader.text("name"),
        description=reader.text("description", optional=True),
        type=card_type,
        code=_code(path.with_suffix(CODE_SUFFIX[card_type])),
        datasets=reader.names("datasets"),
        params=reader.params(),
    )


def _transform(path: Path) -> TransformSpec:
    reader = _Reader(
        path,
        _load(path),
        {"key", "name", "inputs", "schedule", "params"},
        {"key", "name", "inputs"},
    )
    schedule = reader.document.get("schedule")
    cron, enabled = None, False
    if schedule is not None:
        if not isinstance(schedule, dict) or not isinstance(schedule.get("cron"), str):
            reader.fail("`schedule` must be a mapping with `cron` (text) and `enabled`")
        cron, enabled = schedule["cron"], reader.flag(schedule, "enabled")
    key = reader.key()
    return TransformSpec(
        key=key,
        name=reader.text("name"),
        code=_code(path.with_suffix(".py")),
        inputs=reader.names("inputs"),
        schedule_cron=cron,
        schedule_enabled=enabled,
        params=reader.params(),
    )


def _dashboard(path: Path) -> DashboardSpec:
    reader = _Reader(
        path,
        _load(path),
        {"key", "name", "description", "layout", "filters", "filterViews"},
        {"key", "name"},
    )
    layout = reader.document.get("layout") or {}
    if not isinstance(layout, dict):
        reader.fail("`layout` must be a mapping")
    items = []
    for entry in layout.get("items") or []:
        if not isinstance(entry, dict) or not is_key(entry.get("card")):
            reader.fail("every layout item needs `card` (a card's key) and x, y, w, h")
        items.append(
            LayoutItemSpec(entry["card"], *(reader.integer(entry, n) for n in ("x", "y", "w", "h")))
        )
    filters = []
    for entry in reader.document.get("filters") or []:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(n), str) for n in ("id", "type", "column", "label")
        ):
            reader.fail("every filter needs `id`, `type`, `column` and `label` (text)")
        options = entry.get("options")
        if options is not None and not isinstance(options, list):
            reader.fail("a filter's `options` must be a list")
        filters.append(
            FilterSpec(
                entry["id"],
                entry["type"],
                entry["column"],
                entry["label"],
                reader.flag(entry, "multiSelect"),
                tuple(str(o) for o in options) if options is not None else None,
            )
        )
    views = []
    for entry in reader.document.get("filterViews") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            reader.fail("every filter view needs a `name`")
        state = entry.get("filterState") or {}
        if not isinstance(state, dict):
            reader.fail("a filter view's `filterState` must be a mapping")
        views.append(
            FilterViewSpec(
                entry["name"],
                state,
                reader.flag(entry, "isShared"),
                reader.flag(entry, "isDefault"),
            )
        )
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        reader.fail("two filter views have the same name")
    key = reader.key()
    return DashboardSpec(
        key=key,
        name=reader.text("name"),
        description=reader.text("description", optional=True),
        columns=reader.integer(layout, "columns", 12),
        row_height=reader.integer(layout, "rowHeight", 100),
        items=tuple(items),
        filters=tuple(filters),
        views=tuple(sorted(views, key=lambda v: v.name)),
    )


def read_workspace(directory: Path) -> Workspace:
    """The workspace a directory describes; WorkspaceFileError names the first bad file."""
    if not directory.is_dir():
        raise WorkspaceFileError(f"{directory}: not a directory")
    if not any((directory / sub).is_dir() for sub in (CARDS, TRANSFORMS, DASHBOARDS)):
        # A mistyped path must not read as an empty workspace (which --prune would apply).
        raise WorkspaceFileError(
            f"{directory}: no {CARDS}/, {TRANSFORMS}/ or {DASHBOARDS}/ folder; "
            "not a workspace directory (tilegraph export writes one)"
        )

    def specs(sub: str, read: Any) -> dict[str, Any]:
        folder = directory / sub
        found = [read(p) for p in sorted(folder.glob("*.yaml"))] if folder.is_dir() else []
        return {spec.key: spec for spec in found}

    workspace = Workspace(
        cards=specs(CARDS, _card),
        transforms=specs(TRANSFORMS, _transform),
        dashboards=specs(DASHBOARDS, _dashboard),
    )
    for dashboard in workspace.dashboards.values():
        for item in dashboard.items:
            if item.card not in workspace.cards:
                raise WorkspaceFileError(
                    f"{directory / DASHBOARDS / (dashboard.key + '.yaml')}: the layout shows "
                    f"card {item.card!r}, which has no file in {CARDS}/"
                )
    return workspace
