"""`tilegraph export DIR` and `tilegraph apply DIR [--dry-run] [--prune]`: the caller's
cards, transforms and dashboards as files to keep in git, and back, through the GraphQL API.

Objects are matched with their files by `workspaceKey` (export gives every object one);
filter views by name within their dashboard. Datasets are referenced by name and are never
created or changed here. Apply plans first (create / update with the fields that differ /
unchanged, and what the server holds that the directory does not), prints the plan, and
only then changes anything: cards and transforms before the dashboards that show them,
deletions (with --prune) last. Every update carries the version the plan was made from,
so an object changed meanwhile fails with CONFLICT instead of being overwritten."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from tilegraph.domain.clock import from_iso
from tilegraph.local.api_client import ApiError, GraphQLClient, sign_in
from tilegraph.local.workspace_files import (
    CardSpec,
    DashboardSpec,
    FilterSpec,
    FilterViewSpec,
    Keyed,
    LayoutItemSpec,
    TransformSpec,
    Workspace,
    WorkspaceFileError,
    assign_keys,
    changed_fields,
    filter_fields,
    read_workspace,
    write_workspace,
)

PAGE = "pageInfo { hasNextPage endCursor }"
ME = "{ me { id } }"
DATASETS = f"""query($after: String) {{ datasets(first: 100, after: $after) {{
  nodes {{ id name }} {PAGE} }} }}"""
CARDS = f"""query($after: String) {{ cards(first: 50, after: $after) {{
  nodes {{ id name description type code params workspaceKey version createdAt
    datasets {{ id name }} }}
  {PAGE} }} }}"""
TRANSFORMS = f"""query($after: String) {{ transforms(first: 50, after: $after) {{
  nodes {{ id name code params scheduleCron scheduleEnabled workspaceKey version createdAt
    inputDatasets {{ id name }} }}
  {PAGE} }} }}"""
DASHBOARDS = f"""query($after: String) {{ dashboards(first: 100, after: $after) {{
  nodes {{ id owner {{ id }} }} {PAGE} }} }}"""
DASHBOARD = """query($id: ID!) { dashboard(id: $id) {
  id name description version workspaceKey createdAt
  layout { columns rowHeight items { card { id } x y w h } }
  filters { id type column label multiSelect options }
  filterViews { id name filterState isShared isDefault owner { id } } } }"""

CREATE = {
    "card": "mutation($i: CreateCardInput!) { createCard(input: $i) { card { id } } }",
    "transform": "mutation($i: CreateTransformInput!) { createTransform(input: $i) "
    "{ transform { id } } }",
    "dashboard": "mutation($i: CreateDashboardInput!) { createDashboard(input: $i) "
    "{ dashboard { id } } }",
    "filter view": "mutation($i: CreateFilterViewInput!) { createFilterView(input: $i) "
    "{ filterView { id } } }",
}
UPDATE = {
    "card": "mutation($i: UpdateCardInput!) { updateCard(input: $i) { card { id } } }",
    "transform": "mutation($i: UpdateTransformInput!) { updateTransform(input: $i) "
    "{ transform { id } } }",
    "dashboard": "mutation($i: UpdateDashboardInput!) { updateDashboard(input: $i) "
    "{ dashboard { id } } }",
    "filter view": "mutation($i: UpdateFilterViewInput!) { updateFilterView(input: $i) "
    "{ filterView { id } } }",
}
DELETE = {
    "card": "mutation($i: DeleteInput!) { deleteCard(input: $i) { deletedId } }",
    "transform": "mutation($i: DeleteInput!) { deleteTransform(input: $i) { deletedId } }",
    "dashboard": "mutation($i: DeleteInput!) { deleteDashboard(input: $i) { deletedId } }",
    "filter view": "mutation($i: DeleteInput!) { deleteFilterView(input: $i) { deletedId } }",
}


class WorkspaceError(RuntimeError):
    """Nothing was changed: a reason worded for the person at the terminal."""


# ---------------------------------------------------------------- reading the server


def _all(client: GraphQLClient, query: str, name: str) -> list[dict[str, Any]]:
    """Every node of one of the caller's connections, page by page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.call(query, {"after": after})[name]
        nodes.extend(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return nodes
        after = page["pageInfo"]["endCursor"]


@dataclass
class ServerState:
    """What the caller owns on the server, as the API shows it to them."""

    user_id: str
    datasets: list[dict[str, Any]]
    cards: list[dict[str, Any]]
    transforms: list[dict[str, Any]]
    dashboards: list[dict[str, Any]]

    @classmethod
    def read(cls, client: GraphQLClient) -> ServerState:
        user_id = str(client.call(ME)["me"]["id"])
        owned = [
            d["id"] for d in _all(client, DASHBOARDS, "dashboards") if d["owner"]["id"] == user_id
        ]
        return cls(
            user_id=user_id,
            datasets=_all(client, DATASETS, "datasets"),
            cards=_all(client, CARDS, "cards"),
            transforms=_all(client, TRANSFORMS, "transforms"),
            dashboards=[client.call(DASHBOARD, {"id": i})["dashboard"] for i in owned],
        )

    def dataset_ids_by_name(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for dataset in self.datasets:
            found.setdefault(dataset["name"], []).append(dataset["id"])
        return found


def _keyed(nodes: Iterable[dict[str, Any]]) -> list[Keyed]:
    return [Keyed(n["id"], n["name"], from_iso(n["createdAt"]), n["workspaceKey"]) for n in nodes]


def card_spec(node: dict[str, Any], key: str) -> CardSpec:
    return CardSpec(
        key=key,
        name=node["name"],
        type=node["type"],
        code=node["code"],
        datasets=tuple(d["name"] for d in node["datasets"]),
        description=node["description"] or None,
        params=node["params"],
    )


def transform_spec(node: dict[str, Any], key: str) -> TransformSpec:
    return TransformSpec(
        key=key,
        name=node["name"],
        code=node["code"],
        inputs=tuple(d["name"] for d in node["inputDatasets"]),
        schedule_cron=node["scheduleCron"],
        schedule_enabled=bool(node["scheduleEnabled"]),
        params=node["params"],
    )


def dashboard_spec(
    node: dict[str, Any], key: str, card_keys: dict[str, str], user_id: str
) -> DashboardSpec:
    """The dashboard as files show it: cards by key (cards that are not the caller's, or
    have no key, are left out), and the caller's own filter views."""
    layout = node["layout"]
    return DashboardSpec(
        key=key,
        name=node["name"],
        description=node["description"] or None,
        columns=layout["columns"],
        row_height=layout["rowHeight"],
        items=tuple(
            LayoutItemSpec(card_keys[i["card"]["id"]], i["x"], i["y"], i["w"], i["h"])
            for i in layout["items"]
            if i["card"]["id"] in card_keys
        ),
        filters=tuple(
            FilterSpec(
                f["id"],
                f["type"],
                f["column"],
                f["label"],
                bool(f["multiSelect"]),
                tuple(f["options"]) if f["options"] is not None else None,
            )
            for f in node["filters"]
        ),
        views=tuple(
            sorted(
                (
                    FilterViewSpec(v["name"], v["filterState"] or {}, v["isShared"], v["isDefault"])
                    for v in node["filterViews"]
                    if v["owner"]["id"] == user_id
                ),
                key=lambda v: v.name,
            )
        ),
    )


def _ambiguous(state: ServerState, names: Iterable[str]) -> list[str]:
    by_name = state.dataset_ids_by_name()
    return sorted({n for n in names if len(by_name.get(n, [])) > 1})


# ---------------------------------------------------------------- export


def export_workspace(client: GraphQLClient, directory: Path, out: TextIO) -> int:
    state = ServerState.read(client)
    kinds: list[tuple[str, list[dict[str, Any]]]] = [
        ("card", state.cards),
        ("transform", state.transforms),
        ("dashboard", state.dashboards),
    ]
    keys = {kind: assign_keys(_keyed(nodes), kind) for kind, nodes in kinds}
    cards = {keys["card"][n["id"]]: card_spec(n, keys["card"][n["id"]]) for n in state.cards}
    transforms = {
        keys["transform"][n["id"]]: transform_spec(n, keys["transform"][n["id"]])
        for n in state.transforms
    }
    dashboards = {}
    for node in state.dashboards:
        key = keys["dashboard"][node["id"]]
        dashboards[key] = dashboard_spec(node, key, keys["card"], state.user_id)
        left_out = len(node["layout"]["items"]) - len(dashboards[key].items)
        if left_out:
            print(
                f"dashboard {key}: {left_out} card(s) of other users are not part of the "
                "workspace and are not written",
                file=out,
            )
    workspace = Workspace(cards, transforms, dashboards)
    ambiguous = _ambiguous(state, workspace.dataset_names())
    if ambiguous:
        raise WorkspaceError(
            "More than one of your datasets is called "
            + ", ".join(repr(n) for n in ambiguous)
            + "; rename all but one so the files can name them"
        )
    for kind, nodes in kinds:
        for node in nodes:
            if node["workspaceKey"] is None:
                key = keys[kind][node["id"]]
                update: dict[str, Any] = {
                    "id": node["id"],
                    "workspaceKey": key,
                    "expectedVersion": node["version"],
                }
                client.call(UPDATE[kind], {"i": update})
                print(f"{kind} {node['name']!r}: set its workspace key to {key!r}", file=out)
    touched = write_workspace(directory, workspace)
    for path in touched:
        print(f"wrote {path}" if (directory / path).exists() else f"removed {path}", file=out)
    print(
        f"Exported {len(cards)} card(s), {len(transforms)} transform(s) and "
        f"{len(dashboards)} dashboard(s) to {directory}"
        + ("" if touched else " (no file changed)"),
        file=out,
    )
    return 0


# ---------------------------------------------------------------- plan


# How the plan names a changed field: as the files spell it.
FILE_FIELDS = {
    "columns": "layout.columns",
    "row_height": "layout.rowHeight",
    "items": "layout.items",
    "schedule_cron": "schedule.cron",
    "schedule_enabled": "schedule.enabled",
    "filter_state": "filterState",
    "is_shared": "isShared",
    "is_default": "isDefault",
}


@dataclass
class Step:
    """One change of the plan (or one object left as it is)."""

    kind: str  # card | transform | dashboard | filter view
    key: str  # the workspace key; `dashboard/view name` for a filter view
    action: str  # create | update | unchanged | delete | left
    fields: list[str] = field(default_factory=list)
    run: Callable[[], None] | None = None

    def describe(self) -> str:
        if self.action == "update":
            named = ", ".join(FILE_FIELDS.get(f, f) for f in self.fields)
            return f"{self.kind} {self.key}: update ({named})"
        if self.action == "left":
            return f"{self.kind} {self.key}: left (use --prune to delete)"
        return f"{self.kind} {self.key}: {self.action}"


@dataclass
class Plan:
    steps: list[Step]
    # What the plan leaves alone and why (objects without a workspace key).
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.run is not None]

    def summary(self) -> str:
        counts = Counter(s.action for s in self.steps)
        parts = [
            f"{counts[a]} to {a}" if a in ("create", "update", "delete") else f"{counts[a]} {a}"
            for a in ("create", "update", "delete", "unchanged", "left")
            if counts[a]
        ]
        return "Plan: " + (", ".join(parts) if parts else "nothing to do")


# The input field each spec field is sent as.
CARD_INPUTS = {
    "name": "name",
    "description": "description",
    "code": "code",
    "datasets": "datasetIds",
    "params": "params",
}
TRANSFORM_INPUTS = {
    "name": "name",
    "code": "code",
    "inputs": "inputDatasetIds",
    "schedule_cron": "scheduleCron",
    "schedule_enabled": "scheduleEnabled",
    "params": "params",
}


class _Planner:
    """Builds the steps; each change's `run` reads ids that earlier steps fill in (a
    dashboard's layout needs the ids of cards created before it)."""

    def __init__(
        self, client: GraphQLClient, state: ServerState, workspace: Workspace, prune: bool
    ) -> None:
        self.client = client
        self.state = state
        self.workspace = workspace
        self.prune = prune
        self.steps: list[Step] = []
        by_name = state.dataset_ids_by_name()
        self.dataset_id = {name: ids[0] for name, ids in by_name.items() if len(ids) == 1}
        self.card_ids: dict[str, str] = {}

    def _matched(self, kind: str, nodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        counts = Counter(n["workspaceKey"] for n in nodes if n["workspaceKey"])
        twice = sorted(k for k, n in counts.items() if n > 1)
        if twice:
            raise WorkspaceError(
                f"More than one of your {kind}s has the workspace key "
                + ", ".join(repr(k) for k in twice)
                + "; clear or change all but one"
            )
        return {n["workspaceKey"]: n for n in nodes if n["workspaceKey"]}

    def _call(self, query: str, value: dict[str, Any]) -> Callable[[], None]:
        def run() -> None:
            self.client.call(query, {"i": value})

        return run

    # ---------------------------------------------------------------- kinds

    def cards(self) -> list[Step]:
        server = self._matched("card", self.state.cards)
        self.card_ids.update({key: found["id"] for key, found in server.items()})
        for key, spec in sorted(self.workspace.cards.items()):
            node = server.get(key)
            datasets = [self.dataset_id[n] for n in spec.datasets]
            if node is None:
                self.steps.append(Step("card", key, "create", run=self._create_card(spec)))
                continue
            changed = changed_fields(card_spec(node, key), spec, ignore=("key",))
            if "type" in changed:
                raise WorkspaceError(
                    f"card {key}: its type is {node['type']} on the server and {spec.type} in "
                    "the files; a card's type cannot change (give the file another key)"
                )
            if not changed:
                self.steps.append(Step("card", key, "unchanged"))
                continue
            update = {
                "id": node["id"],
                "expectedVersion": node["version"],
                **{
                    CARD_INPUTS[f]: datasets if f == "datasets" else getattr(spec, f)
                    for f in changed
                },
            }
            if "description" in changed and spec.description is None:
                update["description"] = ""  # null would keep the old one
            self.steps.append(
                Step("card", key, "update", changed, run=self._call(UPDATE["card"], update))
            )
        return self._later(
            "card",
            [(k, n["id"]) for k, n in sorted(server.items()) if k not in self.workspace.cards],
        )

    def _create_card(self, spec: CardSpec) -> Callable[[], None]:
        def run() -> None:
            value: dict[str, Any] = {
                "name": spec.name,
                "description": spec.description,
                "type": spec.type,
                "code": spec.code,
                "datasetIds": [self.dataset_id[n] for n in spec.datasets],
                "params": spec.params,
                "workspaceKey": spec.key,
            }
            data = self.client.call(CREATE["card"], {"i": value})
            self.card_ids[spec.key] = data["createCard"]["card"]["id"]

        return run

    def transforms(self) -> list[Step]:
        server = self._matched("transform", self.state.transforms)
        for key, spec in sorted(self.workspace.transforms.items()):
            node = server.get(key)
            inputs = [self.dataset_id[n] for n in spec.inputs]
            if node is None:
                value = {
                    "name": spec.name,
                    "inputDatasetIds": inputs,
                    "code": spec.code,
                    "scheduleCron": spec.schedule_cron,
                    "scheduleEnabled": spec.schedule_enabled,
                    "params": spec.params,
                    "workspaceKey": key,
                }
                run = self._call(CREATE["transform"], value)
                self.steps.append(Step("transform", key, "create", run=run))
                continue
            changed = changed_fields(transform_spec(node, key), spec, ignore=("key",))
            if not changed:
                self.steps.append(Step("transform", key, "unchanged"))
                continue
            update = {
                "id": node["id"],
                "expectedVersion": node["version"],
                **{
                    TRANSFORM_INPUTS[f]: inputs if f == "inputs" else getattr(spec, f)
                    for f in changed
                },
            }
            run = self._call(UPDATE["transform"], update)
            self.steps.append(Step("transform", key, "update", changed, run=run))
        return self._later(
            "transform",
            [(k, n["id"]) for k, n in sorted(server.items()) if k not in self.workspace.transforms],
        )

    def dashboards(self) -> list[Step]:
        server = self._matched("dashboard", self.state.dashboards)
        own_card_keys = {
            n["id"]: n["workspaceKey"] for n in self.state.cards if n["workspaceKey"] is not None
        }
        later: list[Step] = []
        for key, spec in sorted(self.workspace.dashboards.items()):
            node = server.get(key)
            ids: dict[str, str] = {}
            if node is None:
                self.steps.append(
                    Step("dashboard", key, "create", run=self._create_dashboard(spec, ids))
                )
            else:
                ids["dashboard"] = node["id"]
                current = dashboard_spec(node, key, own_card_keys, self.state.user_id)
                changed = changed_fields(current, spec, ignore=("key", "views"))
                if not changed:
                    self.steps.append(Step("dashboard", key, "unchanged"))
                else:
                    run = self._update_dashboard(spec, node, changed)
                    self.steps.append(Step("dashboard", key, "update", changed, run=run))
            later.extend(self._views(spec, node, ids))
        deletes = [
            (k, n["id"]) for k, n in sorted(server.items()) if k not in self.workspace.dashboards
        ]
        return later + self._later("dashboard", deletes)

    def _layout(self, spec: DashboardSpec, node: dict[str, Any] | None) -> dict[str, Any]:
        """The files' layout, plus the cards on the server's layout that the files cannot
        name (other users' cards, the caller's cards without a key), kept where they are."""
        managed = set(self.card_ids.values())
        kept = [
            {"cardId": i["card"]["id"], "x": i["x"], "y": i["y"], "w": i["w"], "h": i["h"]}
            for i in (node["layout"]["items"] if node else [])
            if i["card"]["id"] not in managed
        ]
        return {
            "columns": spec.columns,
            "rowHeight": spec.row_height,
            "items": [
                {"cardId": self.card_ids[i.card], "x": i.x, "y": i.y, "w": i.w, "h": i.h}
                for i in spec.items
            ]
            + kept,
        }

    @staticmethod
    def _filters(spec: DashboardSpec) -> list[dict[str, Any]]:
        return [filter_fields(f) for f in spec.filters]

    def _create_dashboard(self, spec: DashboardSpec, ids: dict[str, str]) -> Callable[[], None]:
        def run() -> None:
            value = {
                "name": spec.name,
                "description": spec.description,
                "layout": self._layout(spec, None),
                "filters": self._filters(spec),
                "workspaceKey": spec.key,
            }
            data = self.client.call(CREATE["dashboard"], {"i": value})
            ids["dashboard"] = data["createDashboard"]["dashboard"]["id"]

        return run

    def _update_dashboard(
        self, spec: DashboardSpec, node: dict[str, Any], changed: list[str]
    ) -> Callable[[], None]:
        def run() -> None:
            value: dict[str, Any] = {"id": node["id"], "expectedVersion": node["version"]}
            if "name" in changed:
                value["name"] = spec.name
            if "description" in changed:
                value["description"] = spec.description or ""
            if {"columns", "row_height", "items"} & set(changed):
                value["layout"] = self._layout(spec, node)
            if "filters" in changed:
                value["filters"] = self._filters(spec)
            self.client.call(UPDATE["dashboard"], {"i": value})

        return run

    def _views(
        self, spec: DashboardSpec, node: dict[str, Any] | None, ids: dict[str, str]
    ) -> list[Step]:
        """The dashboard's filter views, matched by name among the caller's own; they are
        written after every dashboard change (their state names the dashboard's filters)."""
        mine = {
            v["name"]: v
            for v in (node["filterViews"] if node else [])
            if v["owner"]["id"] == self.state.user_id
        }
        later: list[Step] = []
        for view in spec.views:
            label = f"{spec.key}/{view.name}"
            existing = mine.get(view.name)
            if existing is None:
                self.steps.append(
                    Step("filter view", label, "create", run=self._create_view(view, ids))
                )
                continue
            current = FilterViewSpec(
                existing["name"],
                existing["filterState"] or {},
                existing["isShared"],
                existing["isDefault"],
            )
            changed = changed_fields(current, view, ignore=("name",))
            if not changed:
                self.steps.append(Step("filter view", label, "unchanged"))
                continue
            names = {
                "filter_state": "filterState",
                "is_shared": "isShared",
                "is_default": "isDefault",
            }
            value = {"id": existing["id"], **{names[f]: getattr(view, f) for f in changed}}
            run = self._call(UPDATE["filter view"], value)
            self.steps.append(Step("filter view", label, "update", changed, run=run))
        wanted = {v.name for v in spec.views}
        for name, existing in sorted(mine.items()):
            if name not in wanted:
                if self.prune:
                    run = self._call(DELETE["filter view"], {"id": existing["id"]})
                    later.append(Step("filter view", f"{spec.key}/{name}", "delete", run=run))
                else:
                    later.append(Step("filter view", f"{spec.key}/{name}", "left"))
        return later

    def _create_view(self, view: FilterViewSpec, ids: dict[str, str]) -> Callable[[], None]:
        def run() -> None:
            value = {
                "dashboardId": ids["dashboard"],
                "name": view.name,
                "filterState": view.filter_state,
                "isShared": view.is_shared,
                "isDefault": view.is_default,
            }
            self.client.call(CREATE["filter view"], {"i": value})

        return run

    def _later(self, kind: str, objects: list[tuple[str, str]]) -> list[Step]:
        """Objects of the server that the directory lacks: deleted last, with --prune."""
        steps: list[Step] = []
        for key, object_id in objects:
            if self.prune:
                run = self._call(DELETE[kind], {"id": object_id})
                steps.append(Step(kind, key, "delete", run=run))
            else:
                steps.append(Step(kind, key, "left"))
        return steps


def plan_apply(
    client: GraphQLClient, workspace: Workspace, *, prune: bool, state: ServerState | None = None
) -> Plan:
    """What applying `workspace` would do, without changing anything. WorkspaceError when
    it cannot be applied at all (a dataset it names is missing, a key is ambiguous)."""
    state = state or ServerState.read(client)
    by_name = state.dataset_ids_by_name()
    names = workspace.dataset_names()
    missing = [n for n in names if n not in by_name]
    if missing:
        raise WorkspaceError(
            "These datasets are missing (import them first, with these names): "
            + ", ".join(repr(n) for n in missing)
        )
    ambiguous = _ambiguous(state, names)
    if ambiguous:
        raise WorkspaceError(
            "More than one of your datasets is called "
            + ", ".join(repr(n) for n in ambiguous)
            + "; rename all but one"
        )
    planner = _Planner(client, state, workspace, prune)
    # Each kind adds its creates and updates to planner.steps in dependency order and
    # returns what the directory lacks, to delete after every other change: filter views,
    # then dashboards, then the cards and transforms they may have shown.
    card_deletes = planner.cards()
    transform_deletes = planner.transforms()
    dashboard_deletes = planner.dashboards()
    ordered = planner.steps + dashboard_deletes + card_deletes + transform_deletes
    notes = [
        f"{len(unkeyed)} {kind}(s) of yours have no workspace key and are left alone "
        "(tilegraph export gives them one)"
        for kind, nodes in (
            ("card", state.cards),
            ("transform", state.transforms),
            ("dashboard", state.dashboards),
        )
        if (unkeyed := [n for n in nodes if not n["workspaceKey"]])
    ]
    return Plan(ordered, notes)


def carry_out(plan: Plan, out: TextIO) -> int:
    """Makes the plan's changes in order; stops at the first refusal, saying what was
    done and what the API answered (a CONFLICT: someone changed the object meanwhile)."""
    done = 0
    changes = plan.changes
    for step in changes:
        assert step.run is not None
        try:
            step.run()
        except ApiError as exc:
            code = f"{exc.code}: " if exc.code else ""
            print(f"{step.kind} {step.key}: {step.action} failed: {code}{exc.message}", file=out)
            if exc.code == "CONFLICT":
                print(
                    "It was changed on the server after the plan was made; run apply again "
                    "to plan from what is there now.",
                    file=out,
                )
            print(f"{done} of {len(changes)} change(s) were made before.", file=out)
            return 1
        done += 1
        print(f"{step.kind} {step.key}: {step.action}d", file=out)
    print(f"Applied {done} change(s).", file=out)
    return 0


def apply_workspace(
    client: GraphQLClient, directory: Path, *, dry_run: bool, prune: bool, out: TextIO
) -> int:
    workspace = read_workspace(directory)
    plan = plan_apply(client, workspace, prune=prune)
    for step in plan.steps:
        print(step.describe(), file=out)
    for note in plan.notes:
        print(note, file=out)
    print(plan.summary(), file=out)
    if dry_run:
        print("Dry run: nothing was changed.", file=out)
        return 0
    if not plan.changes:
        return 0
    return carry_out(plan, out)


# ---------------------------------------------------------------- commands


def _run(
    command: str,
    server: str,
    token: str | None,
    email: str | None,
    work: Callable[[GraphQLClient], int],
) -> int:
    try:
        token = sign_in(server, token, email)
        with GraphQLClient(server, token) as client:
            return work(client)
    except (WorkspaceError, WorkspaceFileError, OSError) as exc:
        print(f"tilegraph {command}: {exc}", file=sys.stderr)
        return 1
    except ApiError as exc:
        code = f"{exc.code}: " if exc.code else ""
        print(f"tilegraph {command}: {code}{exc.message}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"tilegraph {command}: cannot reach {server}: {exc}", file=sys.stderr)
        return 1


def run_export(directory: Path, server: str, token: str | None, email: str | None) -> int:
    return _run(
        "export", server, token, email, lambda c: export_workspace(c, directory, sys.stdout)
    )


def run_apply(
    directory: Path,
    server: str,
    token: str | None,
    email: str | None,
    *,
    dry_run: bool,
    prune: bool,
) -> int:
    return _run(
        "apply",
        server,
        token,
        email,
        lambda c: apply_workspace(c, directory, dry_run=dry_run, prune=prune, out=sys.stdout),
    )
