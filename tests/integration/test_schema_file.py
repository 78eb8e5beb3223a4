"""The checked-in schema.graphql is what the server prints, and it honours the contract."""

from __future__ import annotations

import re
from pathlib import Path

from tests.contract import contract_problems
from tilegraph.schema.build import print_sdl

ROOT = Path(__file__).resolve().parents[2]

# Contract parts that later issues deliver. The test fails when one of these appears
# (remove it from the list then) and when anything else is missing or differs.
PENDING = {
    "@requiresPermission",
    "CancelExecutionInput",
    "Card",
    "CardConnection",
    "CardEdge",
    "CardExecution",
    "CardExecutionPayload",
    "CardPayload",
    "CardResult",
    "CardType",
    "ChatEvent",
    "ChatEventType",
    "ChatMessageInput",
    "CloneDashboardInput",
    "Column",
    "ColumnDescriptionInput",
    "ColumnFilterInput",
    "ColumnType",
    "CreateCardInput",
    "CreateDashboardInput",
    "CreateFilterViewInput",
    "CreateTransformInput",
    "Dashboard",
    "DashboardConnection",
    "DashboardEdge",
    "DashboardExecutionPayload",
    "DashboardLayout",
    "DashboardLayoutInput",
    "DashboardPayload",
    "DashboardShare",
    "DashboardSharePayload",
    "Dataset",
    "DatasetConnection",
    "DatasetEdge",
    "DatasetImport",
    "DatasetImportPayload",
    "DatasetPayload",
    "DatasetPreview",
    "DatasetSourceType",
    "ExecuteCardInput",
    "ExecuteDashboardInput",
    "ExecuteTransformInput",
    "ExecutionError",
    "ExecutionErrorCode",
    "ExecutionStatus",
    "FilterDefinition",
    "FilterDefinitionInput",
    "FilterType",
    "FilterView",
    "FilterViewPayload",
    "Float",
    "ImportDatasetFromS3Input",
    "LayoutItem",
    "LayoutItemInput",
    "Mutation.cancelExecution",
    "Mutation.cloneDashboard",
    "Mutation.createCard",
    "Mutation.createDashboard",
    "Mutation.createFilterView",
    "Mutation.createTransform",
    "Mutation.deleteCard",
    "Mutation.deleteDashboard",
    "Mutation.deleteDataset",
    "Mutation.deleteFilterView",
    "Mutation.deleteTransform",
    "Mutation.executeCard",
    "Mutation.executeDashboard",
    "Mutation.executeTransform",
    "Mutation.importDatasetFromS3",
    "Mutation.planDatasetReimport",
    "Mutation.previewCard",
    "Mutation.reimportDataset",
    "Mutation.removeDashboardShare",
    "Mutation.shareDashboard",
    "Mutation.updateCard",
    "Mutation.updateDashboard",
    "Mutation.updateDashboardShare",
    "Mutation.updateDataset",
    "Mutation.updateFilterView",
    "Mutation.updateTransform",
    "Mutation.uploadDataset",
    "PermissionLevel",
    "PreviewCardInput",
    "Query.card",
    "Query.cardExecution",
    "Query.cards",
    "Query.dashboard",
    "Query.dashboards",
    "Query.dataset",
    "Query.datasetImport",
    "Query.datasets",
    "Query.filterView",
    "Query.transform",
    "Query.transformExecution",
    "Query.transforms",
    "ReferencedDataset",
    "ReimportDatasetInput",
    "ReimportPlan",
    "SchemaChange",
    "SchemaChangeType",
    "ShareDashboardInput",
    "ShareTargetType",
    "Subscription",
    "Transform",
    "TransformConnection",
    "TransformEdge",
    "TransformExecution",
    "TransformExecutionConnection",
    "TransformExecutionEdge",
    "TransformExecutionPayload",
    "TransformPayload",
    "TriggerType",
    "UpdateCardInput",
    "UpdateDashboardInput",
    "UpdateDashboardShareInput",
    "UpdateDatasetInput",
    "UpdateFilterViewInput",
    "UpdateTransformInput",
    "Upload",
    "UploadDatasetInput",
    "subscription root",
}
_MISSING = re.compile(
    r"^(?:type (\w+) missing|(\w+\.\w+) missing|directive @(\w+) missing|schema (\w+) root differs)$"
)


def _name(problem: str) -> str:
    match = _MISSING.match(problem)
    if match is None:
        return "OTHER: " + problem
    type_name, field, directive, root = match.groups()
    return type_name or field or (f"@{directive}" if directive else f"{root} root")


def test_schema_graphql_is_up_to_date() -> None:
    assert (ROOT / "schema.graphql").read_text() == print_sdl(), (
        "schema.graphql is stale: run `tilegraph schema > schema.graphql`"
    )


def test_printed_schema_honours_the_contract() -> None:
    names = sorted(_name(p) for p in contract_problems(print_sdl()))
    assert names == sorted(PENDING)
