"""Revision history: the saved states of cards, dashboards and transforms."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tilegraph.context import Info
from tilegraph.domain.revisions import RevisionObjectType, RevisionRecord
from tilegraph.schema.connections import Connection, connection_from_page
from tilegraph.schema.fields import field
from tilegraph.schema.node import Node
from tilegraph.schema.scalars import JSON
from tilegraph.schema.types.users import User, load_user
from tilegraph.schema.values import page_size


@strawberry.type(description="One field that changed between a revision and the one before it.")
class RevisionChange:
    field: str = strawberry.field(
        description="The input field's name, e.g. code, layout, filters, scheduleCron."
    )
    before: JSON | None = strawberry.field(description="Its value in the revision before.")
    after: JSON | None = strawberry.field(description="Its value in this revision.")


@strawberry.type(
    description="One saved state of a card, dashboard or transform. Every create, update and "
    "restore makes a new revision; none is ever changed or removed while its object exists, "
    "and a deleted object's revisions are kept for TILEGRAPH_DELETED_RETENTION_DAYS "
    "(default 30)."
)
class Revision(Node):
    object_type: RevisionObjectType = strawberry.field(
        description="What kind of object this is a state of."
    )
    object_id: strawberry.ID = strawberry.field(
        description="The card, dashboard or transform (the same id after a delete and restore)."
    )
    number: int = strawberry.field(description="1 for the state at creation, then +1 per change.")
    snapshot: JSON = strawberry.field(
        description="The object's whole state at this revision, in the shape of its create input."
    )
    changes: list[RevisionChange] = strawberry.field(description="Empty for number 1.")
    created_at: datetime = strawberry.field(description="When this state was saved.")
    restored_from: int | None = strawberry.field(
        description="The revision number this one restored, when it was made by restoreRevision."
    )
    deleted: bool = strawberry.field(
        description="True when the object was deleted after this revision (the last one "
        "before the delete)."
    )
    record: strawberry.Private[RevisionRecord]

    @classmethod
    def from_record(cls, record: RevisionRecord) -> Revision:
        return cls(
            id=strawberry.ID(record.id),
            object_type=record.object_type,
            object_id=strawberry.ID(record.object_id),
            number=record.number,
            snapshot=JSON(record.snapshot),
            changes=[
                RevisionChange(
                    field=c.field,
                    before=JSON(c.before) if c.before is not None else None,
                    after=JSON(c.after) if c.after is not None else None,
                )
                for c in record.changes
            ],
            created_at=record.created_at,
            restored_from=record.restored_from,
            deleted=record.deleted,
            record=record,
        )

    @field(description="Who saved this state; null when the account no longer exists.")
    async def author(self, info: Info) -> User | None:
        return await load_user(info, self.record.author_id)


@strawberry.input(description="The revision to restore, and the version it was read at.")
class RestoreRevisionInput:
    id: strawberry.ID = strawberry.field(description="The revision to bring back.")
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET,
        description="The object's current version (Dashboard.version, or the number of its "
        "newest revision); CONFLICT when stale.",
    )


@strawberry.type(
    description="The object as it is now: restored to the revision's state as a new revision. "
    "A deleted object is recreated with its old id. Whoever may update the object may "
    "restore it."
)
class RestoreRevisionPayload:
    revision: Revision = strawberry.field(description="The revision the restore made.")
    node: Node = strawberry.field(description="The card, dashboard or transform, as restored.")


async def revisions_of_owned(
    info: Info, owner_id: str, object_id: str, first: int | None, after: str | None
) -> Connection[Revision]:
    """A card's or transform's revisions: its owner's only (FORBIDDEN for anyone else)."""
    page = await info.context.services.revisions.of_owned(
        info.context.principal, owner_id, object_id, page_size(first, 20), after
    )
    return connection_from_page(page, Revision.from_record)


async def revisions_of(
    info: Info, object_id: str, first: int | None, after: str | None
) -> Connection[Revision]:
    """An object's revisions, for a field whose own check already passed."""
    page = await info.context.services.revisions.of_object(object_id, page_size(first, 20), after)
    return connection_from_page(page, Revision.from_record)
