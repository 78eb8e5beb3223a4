"""GraphQL enums, declared once in domain/ and registered here under the contract's names,
each with a description of the enum and of every value (domain/ knows no GraphQL, so the
words live here)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

import strawberry

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.card_outputs import TableFormat
from tilegraph.domain.cards import CardType
from tilegraph.domain.dashboards import ShareTargetType
from tilegraph.domain.datasets import ColumnType, DatasetAccessDefault, DatasetSourceType
from tilegraph.domain.deliveries import ComparisonOperator, DeliveryChannel, DeliveryContent
from tilegraph.domain.errors import ErrorCode
from tilegraph.domain.executions import ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import FilterType
from tilegraph.domain.lineage import LineageDirection, LineageRelation
from tilegraph.domain.permissions import PermissionLevel
from tilegraph.domain.revisions import RevisionObjectType
from tilegraph.domain.schema_diff import SchemaChangeType
from tilegraph.domain.transforms import TriggerType
from tilegraph.domain.users import Role


def described_enum(
    cls: type[Enum], *, name: str, description: str, values: Mapping[str, str]
) -> None:
    """Registers `cls` as the GraphQL enum `name`; `values` describes every member, and a
    member left out (or one that does not exist) fails here, when the schema is imported."""
    strawberry.enum(cls, name=name, description=description)
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    names = {value.name for value in definition.values}
    if names != set(values):
        raise ValueError(f"enum {name}: describe exactly {sorted(names)}, not {sorted(values)}")
    for value in definition.values:
        value.description = values[value.name]


described_enum(
    RevisionObjectType,
    name="RevisionObjectType",
    description="What kind of object a revision is a state of.",
    values={
        "CARD": "A card (its code, datasets and params).",
        "DASHBOARD": "A dashboard (its layout, filters and default view).",
        "TRANSFORM": "A transform (its code, inputs, schedule and params).",
    },
)

described_enum(
    Role,
    name="Role",
    description="What an account may do across the whole server.",
    values={
        "ADMIN": "Manages users, groups and the audit log, besides everything a USER does.",
        "USER": "Works with their own datasets, cards, dashboards and transforms, and with "
        "dashboards shared with them.",
    },
)
described_enum(
    PermissionLevel,
    name="PermissionLevel",
    description="VIEWER < EDITOR < OWNER.",
    values={
        "VIEWER": "Sees the dashboard, runs its cards and copies it; saves private filter views.",
        "EDITOR": "As VIEWER, and changes the dashboard (name, description, layout, filters, "
        "default view) and shares filter views.",
        "OWNER": "As EDITOR, and shares or deletes the dashboard.",
    },
)
described_enum(
    AuditEventType,
    name="AuditEventType",
    description="What an audit log entry records.",
    values={
        "USER_LOGIN": "A user signed in.",
        "USER_LOGOUT": "A user signed out (details.everywhere when every session ended).",
        "USER_LOGIN_FAILED": "A sign-in was refused: unknown email, wrong password, disabled "
        "account or too many failures (details.reason).",
        "USER_UPDATED": "An admin renamed a user, changed their role, or disabled or enabled "
        "the account.",
        "DASHBOARD_SHARE_ADDED": "A dashboard was shared with a user or group.",
        "DASHBOARD_SHARE_REMOVED": "A dashboard share was removed.",
        "DASHBOARD_SHARE_UPDATED": "The permission of a dashboard share was changed.",
        "DATASET_CREATED": "A dataset was created by an upload or an S3 import.",
        "DATASET_IMPORTED": "An import published a new version of a dataset.",
        "DATASET_DELETED": "A dataset was deleted (details.forced when it was still in use).",
        "TRANSFORM_EXECUTED": "A transform run succeeded.",
        "TRANSFORM_FAILED": "A transform run failed.",
        "CARD_EXECUTION_FAILED": "A card run (or a preview) failed.",
        "CHATBOT_QUERY": "Someone asked the chatbot about a dashboard.",
        "DATASET_POLICY_CREATED": "A dataset's owner created a policy (details.after).",
        "DATASET_POLICY_UPDATED": "A dataset's owner changed a policy (details.before and "
        "details.after).",
        "DATASET_POLICY_DELETED": "A dataset's owner deleted a policy (details.before).",
        "DATASET_DEFAULT_ACCESS_CHANGED": "A dataset's owner changed what readers matching "
        "no policy see (details.before, details.after).",
        "REVISION_RESTORED": "A card, dashboard or transform was brought back to an earlier "
        "revision, or back from deletion (details.restoredFrom, details.revision).",
        "DELIVERY_SENT": "A delivery run handed its message to the channel (details.runId, "
        "details.attempts).",
        "DELIVERY_FAILED": "A delivery run failed (details.runId, details.code).",
        "USER_ATTRIBUTES_CHANGED": "An admin set a user's attributes (details.before and "
        "details.after).",
    },
)
described_enum(
    ColumnType,
    name="ColumnType",
    description="A column's type, inferred over the whole file when a dataset is imported "
    "(a transform's output keeps its DataFrame's types).",
    values={
        "INT64": "Whole numbers (a column of 0 and 1 stays INT64).",
        "FLOAT64": "Numbers with a fraction or exponent.",
        "BOOL": "true/false or yes/no text.",
        "DATE": "Calendar dates.",
        "DATETIME": "Dates with a time of day.",
        "STRING": "Anything else, as text.",
    },
)
described_enum(
    DatasetSourceType,
    name="DatasetSourceType",
    description="Where a dataset's rows come from.",
    values={
        "CSV": "A file uploaded with uploadDataset.",
        "S3_CSV": "A CSV object imported from S3 with importDatasetFromS3; it can be re-imported.",
        "TRANSFORM": "The output of a transform, written by its runs.",
    },
)
described_enum(
    DatasetAccessDefault,
    name="DatasetAccessDefault",
    description="What readers who match no policy of a dataset see of it.",
    values={
        "FULL": "Every row and column (the behaviour before policies existed).",
        "NONE": "No rows: cards get an empty table with the visible columns.",
    },
)
described_enum(
    ExecutionStatus,
    name="ExecutionStatus",
    description="Where an execution is in its life: QUEUED, then RUNNING, then one of the "
    "terminal states SUCCEEDED, FAILED or CANCELLED.",
    values={
        "QUEUED": "Waiting for a worker.",
        "RUNNING": "A worker is running it.",
        "SUCCEEDED": "Finished with a result.",
        "FAILED": "Ended without a result; `error` says why.",
        "CANCELLED": "Stopped by cancelExecution, or never started (executeDashboard past the "
        "caller's allowance of unfinished runs); `error` says which.",
    },
)
described_enum(
    ExecutionErrorCode,
    name="ExecutionErrorCode",
    description="Why an execution FAILED or was CANCELLED.",
    values={
        "SYNTAX_ERROR": "The code does not parse as Python; `line` points at the error.",
        "MISSING_ENTRY_POINT": "The code defines no `render` (cards) or `transform` and "
        "assigns no `result` (transforms).",
        "FORBIDDEN_OPERATION": "The code tried something the sandbox does not allow, such as "
        "starting a process, opening a network connection or calling native code.",
        "RUNTIME_ERROR": "The code raised an exception; the message has the traceback.",
        "BAD_RESULT": "The code returned something a card or transform may not return (for a "
        "re-import: the file's columns changed after the re-import was checked).",
        "TIMEOUT": "The run took longer than its time limit.",
        "MEMORY_LIMIT": "The run used more memory than its limit.",
        "OUTPUT_TOO_LARGE": "The result is larger than the limit for results.",
        "INPUT_UNAVAILABLE": "A dataset the run reads was deleted or cannot be read.",
        "WORKER_LOST": "The worker running it was lost (killed or cut off) before it finished.",
        "CANCELLED": "cancelExecution stopped it, or it was never started (the message says "
        "which).",
        "DELIVERY_FAILED": "The channel refused or could not be reached after every retry; "
        "the message names the last answer.",
        "TARGET_NOT_ALLOWED": "A recipient URL is not allowed (not https, or resolves to a "
        "private, loopback or link-local address that is not allow-listed).",
    },
)
described_enum(
    SchemaChangeType,
    name="SchemaChangeType",
    description="How a re-import would change one column.",
    values={
        "ADDED": "The new file has a column the dataset lacks.",
        "REMOVED": "The new file lacks one of the dataset's columns.",
        "TYPE_CHANGED": "The column's inferred type differs (oldValue and newValue are "
        "ColumnType names).",
        "NULLABLE_CHANGED": "The column gains or loses null values (oldValue and newValue are "
        '"true" or "false").',
    },
)
described_enum(
    CardType,
    name="CardType",
    description="What a card holds.",
    values={
        "CODE": "Python code with a `render(dataset, filters, params)` entry point.",
        "TEXT": "Static text/HTML, shown as is; never executed.",
    },
)
described_enum(
    TableFormat,
    name="TableFormat",
    description="A file format a card's table downloads as.",
    values={
        "CSV": "Comma-separated text with a header row (UTF-8).",
        "XLSX": "An Excel workbook with one sheet (at most 1,048,575 rows).",
        "PARQUET": "Apache Parquet, typed columns as stored.",
    },
)
described_enum(
    ShareTargetType,
    name="ShareTargetType",
    description="Who a dashboard share is for.",
    values={
        "USER": "One user.",
        "GROUP": "Every member of a group, members who join later included.",
    },
)
described_enum(
    FilterType,
    name="FilterType",
    description="How a dashboard filter narrows the rows of its column.",
    values={
        "CATEGORY": "Keeps rows whose value is one of the chosen values.",
        "DATE_RANGE": "Keeps rows whose date lies between a start and an end, inclusive.",
        "NUMBER_RANGE": "Keeps rows whose number lies between a start and an end, inclusive.",
    },
)
described_enum(
    TriggerType,
    name="TriggerType",
    description="What started a transform or delivery run.",
    values={
        "MANUAL": "executeTransform or runDelivery.",
        "SCHEDULE": "The transform's or delivery's cron schedule.",
    },
)
described_enum(
    DeliveryChannel,
    name="DeliveryChannel",
    description="Where a delivery sends its message.",
    values={
        "EMAIL": "Email through the server's SMTP relay, to each recipient address.",
        "WEBHOOK": "An HTTPS POST of a JSON body, signed with HMAC-SHA256 "
        "(X-Tilegraph-Signature: sha256=…).",
        "SLACK": "A Slack incoming-webhook URL.",
    },
)
described_enum(
    DeliveryContent,
    name="DeliveryContent",
    description="What a delivery's message holds.",
    values={
        "SUMMARY": "A short message: the dashboard, each card's metrics, a link.",
        "HTML_SNAPSHOT": "The dashboard's cards as one self-contained HTML file (charts draw "
        "offline).",
        "CSV": "Each card's table as a CSV file.",
    },
)
described_enum(
    ComparisonOperator,
    name="ComparisonOperator",
    description="How an alert compares a card's metric with its threshold.",
    values={
        "GT": "metric > threshold",
        "GTE": "metric >= threshold",
        "LT": "metric < threshold",
        "LTE": "metric <= threshold",
        "EQ": "metric = threshold",
        "NE": "metric ≠ threshold",
    },
)
described_enum(
    ErrorCode,
    name="ErrorCode",
    description="Every `extensions.code` a GraphQL error may carry.",
    values={
        "UNAUTHENTICATED": "No valid token (sign in with login and send the token), or login "
        "refused the credentials.",
        "FORBIDDEN": "The caller sees the object but may not do this with it (a VIEWER "
        "reading Card.code, a non-admin calling an admin field).",
        "NOT_FOUND": "Nothing with this id exists, or the caller may not see it; the two are "
        "not told apart.",
        "BAD_USER_INPUT": "An argument or input field is invalid; `extensions.field` names it.",
        "CONFLICT": "The object changed meanwhile, already exists, or is in use; reload and "
        "try again.",
        "RATE_LIMITED": "Too many requests or unfinished runs; `extensions.retryAfter` says "
        "when to try again, where known.",
        "QUERY_TOO_COMPLEX": "The query is too large, too deep or too costly to run.",
        "SERVICE_UNAVAILABLE": "A dependency is out of reach and nothing was changed; send the "
        "same request again after `extensions.retryAfter` seconds.",
        "INTERNAL_SERVER_ERROR": "A fault on the server; `extensions.requestId` finds it in the "
        "logs.",
    },
)
described_enum(
    LineageRelation,
    name="LineageRelation",
    description="How two objects of a lineage graph are linked; an edge points the way the "
    "data flows.",
    values={
        "INPUT_OF": "A dataset is an input of a transform.",
        "PRODUCES": "A transform produces a dataset.",
        "READ_BY": "A card reads a dataset.",
        "SHOWN_ON": "A card is laid out on a dashboard.",
    },
)
described_enum(
    LineageDirection,
    name="LineageDirection",
    description="Which way a lineage graph is walked from its root.",
    values={
        "UPSTREAM": "Towards what the root is made from: dashboard → card → dataset → "
        "transform → dataset.",
        "DOWNSTREAM": "Towards what is made from the root: dataset → transform → dataset → "
        "card → dashboard.",
        "BOTH": "Upstream and downstream, each from the root (it never turns back).",
    },
)

__all__ = [
    "AuditEventType",
    "CardType",
    "ColumnType",
    "ComparisonOperator",
    "DatasetAccessDefault",
    "DatasetSourceType",
    "DeliveryChannel",
    "DeliveryContent",
    "ErrorCode",
    "ExecutionErrorCode",
    "ExecutionStatus",
    "FilterType",
    "LineageDirection",
    "LineageRelation",
    "PermissionLevel",
    "Role",
    "SchemaChangeType",
    "ShareTargetType",
    "TableFormat",
    "TriggerType",
    "described_enum",
]
