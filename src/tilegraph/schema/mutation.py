"""The Mutation root."""

from __future__ import annotations

import strawberry

from tilegraph.domain.permissions import PermissionLevel
from tilegraph.resolvers import auth as auth_r
from tilegraph.resolvers import cards as cards_r
from tilegraph.resolvers import dashboards as dashboards_r
from tilegraph.resolvers import datasets as datasets_r
from tilegraph.resolvers import deliveries as deliveries_r
from tilegraph.resolvers import executions as executions_r
from tilegraph.resolvers import groups as groups_r
from tilegraph.resolvers import policies as policies_r
from tilegraph.resolvers import revisions as revisions_r
from tilegraph.resolvers import transforms as transforms_r
from tilegraph.resolvers import users as users_r
from tilegraph.schema.access import admin_only, requires_permission

VIEWER, EDITOR, OWNER = PermissionLevel.VIEWER, PermissionLevel.EDITOR, PermissionLevel.OWNER


@strawberry.type(
    description="Changes. Each takes one `input` and returns a payload; every field but login "
    "needs a signed-in caller."
)
class Mutation:
    login = strawberry.field(
        resolver=auth_r.login,
        description="Signs in and returns a bearer token. A wrong email or password, or a "
        "disabled account, is UNAUTHENTICATED (alike); repeated failures are "
        "RATE_LIMITED for a while. The only field that needs no token.",
    )
    logout = strawberry.field(
        resolver=auth_r.logout, description="Revokes the token the request was made with."
    )
    change_password = strawberry.field(
        resolver=auth_r.change_password,
        description="Changes the caller's password and ends every other session of theirs.",
    )
    logout_everywhere = strawberry.field(
        resolver=auth_r.logout_everywhere,
        description="Ends every session of the caller but the one making this request.",
    )
    create_user = strawberry.field(
        resolver=users_r.create_user,
        extensions=admin_only(),
        description="Creates an account; CONFLICT when the email is taken.",
    )
    update_user = strawberry.field(
        resolver=users_r.update_user,
        extensions=admin_only(),
        description="Renames, changes the role of, disables or enables an account; it holds "
        "from the user's very next request, tokens already issued included.",
    )

    create_group = strawberry.field(
        resolver=groups_r.create_group,
        extensions=admin_only(),
        description="Creates an empty group.",
    )
    update_group = strawberry.field(
        resolver=groups_r.update_group,
        extensions=admin_only(),
        description="Renames a group.",
    )
    delete_group = strawberry.field(
        resolver=groups_r.delete_group,
        extensions=admin_only(),
        description="Deletes a group with the dashboard shares and dataset policies made for "
        "it; its members lose what reached them through it.",
    )
    add_group_member = strawberry.field(
        resolver=groups_r.add_group_member,
        extensions=admin_only(),
        description="Adds a user to a group; CONFLICT when they are a member already.",
    )
    remove_group_member = strawberry.field(
        resolver=groups_r.remove_group_member,
        extensions=admin_only(),
        description="Removes a user from a group; BAD_USER_INPUT when they are not a member.",
    )

    upload_dataset = strawberry.field(
        resolver=datasets_r.upload_dataset,
        description="Creates a dataset from a CSV file sent with the GraphQL multipart "
        "request spec, and queues its import; follow the import with "
        "Subscription.datasetImport.",
    )
    import_dataset_from_s3 = strawberry.field(
        resolver=datasets_r.import_dataset_from_s3,
        description="Creates a dataset from a CSV object in an S3 bucket the server allows,"
        " and queues its import; follow it with Subscription.datasetImport.",
    )
    update_dataset = strawberry.field(
        resolver=datasets_r.update_dataset,
        description="Renames one of the caller's datasets or changes its description or "
        "column descriptions; the rows stay.",
    )
    delete_dataset = strawberry.field(
        resolver=datasets_r.delete_dataset,
        description="Deletes one of the caller's datasets with its data and imports; "
        "CONFLICT while cards or transforms use it, unless `force` (a dataset that never "
        "published a version, such as one whose first import failed, needs no `force`).",
    )
    plan_dataset_reimport = strawberry.field(
        resolver=datasets_r.plan_dataset_reimport,
        description="Dry run: what a re-import would change. Nothing is written.",
    )
    reimport_dataset = strawberry.field(
        resolver=datasets_r.reimport_dataset,
        description="Reads an S3 dataset's object again and queues an import of a new "
        "version; BAD_USER_INPUT when the columns changed, unless `force`.",
    )

    create_dataset_policy = strawberry.field(
        resolver=policies_r.create_dataset_policy,
        description="Owner of the dataset only; one policy per (dataset, target): CONFLICT "
        "for a second.",
    )
    update_dataset_policy = strawberry.field(
        resolver=policies_r.update_dataset_policy,
        description="Changes a policy of one of the caller's datasets; CONFLICT when "
        "expectedVersion is not the stored version.",
    )
    delete_dataset_policy = strawberry.field(
        resolver=policies_r.delete_dataset_policy,
        description="Deletes a policy of one of the caller's datasets; its target then gets "
        "what its other policies, or the dataset's defaultAccess, give.",
    )
    set_user_attributes = strawberry.field(
        resolver=policies_r.set_user_attributes,
        extensions=admin_only(),
        description="Replaces a user's attributes, which policy row filters read.",
    )

    create_card = strawberry.field(
        resolver=cards_r.create_card,
        description="Creates a card owned by the caller.",
    )
    update_card = strawberry.field(
        resolver=cards_r.update_card,
        description="Changes one of the caller's cards.",
    )
    delete_card = strawberry.field(
        resolver=cards_r.delete_card,
        description="Deletes one of the caller's cards; dashboards stop showing it.",
    )
    restore_revision = strawberry.field(
        resolver=revisions_r.restore_revision,
        description="Brings a card, dashboard or transform back to a revision's state, as a new "
        "revision; a deleted one comes back with its id.",
    )
    preview_card = strawberry.field(
        resolver=cards_r.preview_card,
        description="Runs draft card code once on the caller's datasets without saving a "
        "card; follow the run with Subscription.cardExecution. RATE_LIMITED "
        "past the caller's allowance of unfinished runs.",
    )
    execute_card = strawberry.field(
        resolver=cards_r.execute_card,
        description="Runs a card: the caller's own, or one a dashboard lends them "
        "(`dashboardId`). A cached result answers at once, SUCCEEDED; otherwise"
        " follow the run with Subscription.cardExecution. RATE_LIMITED past the"
        " caller's allowance of unfinished runs.",
    )
    execute_dashboard = strawberry.field(
        resolver=dashboards_r.execute_dashboard,
        extensions=requires_permission(VIEWER),
        description="Runs every code card of the dashboard the caller sees, in layout "
        "order. Runs past the caller's allowance of unfinished runs come back "
        "CANCELLED; RATE_LIMITED only when none fits.",
    )
    cancel_execution = strawberry.field(
        resolver=executions_r.cancel_execution,
        description="Cancels one of the caller's card runs, transform runs or imports: a "
        "QUEUED one ends CANCELLED at once, a RUNNING one when its worker has "
        "stopped it. `ok` is false when it had ended already.",
    )

    create_dashboard = strawberry.field(
        resolver=dashboards_r.create_dashboard,
        description="Creates a dashboard owned by the caller.",
    )
    update_dashboard = strawberry.field(
        resolver=dashboards_r.update_dashboard,
        extensions=requires_permission(EDITOR),
        description="Changes a dashboard's name, description, layout, filters or default view.",
    )
    delete_dashboard = strawberry.field(
        resolver=dashboards_r.delete_dashboard,
        extensions=requires_permission(OWNER),
        description="Deletes a dashboard with its shares and filter views; the cards stay.",
    )
    clone_dashboard = strawberry.field(
        resolver=dashboards_r.clone_dashboard,
        extensions=requires_permission(VIEWER),
        description="Copies a dashboard the caller sees (description, layout and filters) "
        "into a new one the caller owns. The copy lends nobody else's cards.",
    )

    share_dashboard = strawberry.field(
        resolver=dashboards_r.share_dashboard,
        extensions=requires_permission(OWNER),
        description="Shares a dashboard with a user or a group.",
    )
    update_dashboard_share = strawberry.field(
        resolver=dashboards_r.update_dashboard_share,
        extensions=requires_permission(OWNER),
        description="Changes the level a share grants.",
    )
    remove_dashboard_share = strawberry.field(
        resolver=dashboards_r.remove_dashboard_share,
        extensions=requires_permission(OWNER),
        description="Removes a share; access through it ends at once, runs already started "
        "included.",
    )

    create_filter_view = strawberry.field(
        resolver=dashboards_r.create_filter_view,
        extensions=requires_permission(VIEWER),
        description="Saves a filter view of a dashboard the caller sees; a shared view "
        "needs EDITOR.",
    )
    update_filter_view = strawberry.field(
        resolver=dashboards_r.update_filter_view,
        description="Changes one of the caller's filter views; sharing or unsharing it "
        "needs EDITOR.",
    )
    delete_filter_view = strawberry.field(
        resolver=dashboards_r.delete_filter_view,
        description="Deletes one of the caller's filter views.",
    )

    create_delivery = strawberry.field(
        resolver=deliveries_r.create_delivery,
        description="EDITOR on the dashboard. A WEBHOOK's signing secret is in the payload, "
        "this once.",
    )
    update_delivery = strawberry.field(
        resolver=deliveries_r.update_delivery,
        description="The delivery's owner, while still EDITOR on the dashboard.",
    )
    delete_delivery = strawberry.field(
        resolver=deliveries_r.delete_delivery,
        description="The delivery's owner, or the dashboard's OWNER; its runs go with it.",
    )
    run_delivery = strawberry.field(
        resolver=deliveries_r.run_delivery,
        description="Send now (a MANUAL run), condition included. The delivery's owner.",
    )
    create_transform = strawberry.field(
        resolver=transforms_r.create_transform,
        description="Creates a transform owned by the caller; its output dataset appears "
        "with its first successful run.",
    )
    update_transform = strawberry.field(
        resolver=transforms_r.update_transform,
        description="Changes one of the caller's transforms; a run that has not started yet "
        "runs the new version.",
    )
    delete_transform = strawberry.field(
        resolver=transforms_r.delete_transform,
        description="Deletes one of the caller's transforms and its runs; its output "
        "dataset stays.",
    )
    execute_transform = strawberry.field(
        resolver=transforms_r.execute_transform,
        description="Queues a run of one of the caller's transforms now; follow it with "
        "Subscription.transformExecution. CONFLICT while a run is in progress; "
        "RATE_LIMITED past the caller's allowance of unfinished runs.",
    )
