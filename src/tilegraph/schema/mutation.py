"""The Mutation root."""

from __future__ import annotations

import strawberry

from tilegraph.domain.permissions import PermissionLevel
from tilegraph.resolvers import auth as auth_r
from tilegraph.resolvers import cards as cards_r
from tilegraph.resolvers import dashboards as dashboards_r
from tilegraph.resolvers import datasets as datasets_r
from tilegraph.resolvers import executions as executions_r
from tilegraph.resolvers import groups as groups_r
from tilegraph.resolvers import transforms as transforms_r
from tilegraph.resolvers import users as users_r
from tilegraph.schema.access import admin_only, requires_permission

VIEWER, EDITOR, OWNER = PermissionLevel.VIEWER, PermissionLevel.EDITOR, PermissionLevel.OWNER


@strawberry.type
class Mutation:
    login = strawberry.field(resolver=auth_r.login)
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
    create_user = strawberry.field(resolver=users_r.create_user, extensions=admin_only())
    update_user = strawberry.field(
        resolver=users_r.update_user,
        extensions=admin_only(),
        description="Renames, changes the role of, disables or enables an account; it holds "
        "from the user's very next request, tokens already issued included.",
    )

    create_group = strawberry.field(resolver=groups_r.create_group, extensions=admin_only())
    update_group = strawberry.field(resolver=groups_r.update_group, extensions=admin_only())
    delete_group = strawberry.field(resolver=groups_r.delete_group, extensions=admin_only())
    add_group_member = strawberry.field(resolver=groups_r.add_group_member, extensions=admin_only())
    remove_group_member = strawberry.field(
        resolver=groups_r.remove_group_member, extensions=admin_only()
    )

    upload_dataset = strawberry.field(resolver=datasets_r.upload_dataset)
    import_dataset_from_s3 = strawberry.field(resolver=datasets_r.import_dataset_from_s3)
    update_dataset = strawberry.field(resolver=datasets_r.update_dataset)
    delete_dataset = strawberry.field(resolver=datasets_r.delete_dataset)
    plan_dataset_reimport = strawberry.field(
        resolver=datasets_r.plan_dataset_reimport,
        description="Dry run: what a re-import would change. Nothing is written.",
    )
    reimport_dataset = strawberry.field(resolver=datasets_r.reimport_dataset)

    create_card = strawberry.field(resolver=cards_r.create_card)
    update_card = strawberry.field(resolver=cards_r.update_card)
    delete_card = strawberry.field(resolver=cards_r.delete_card)
    preview_card = strawberry.field(resolver=cards_r.preview_card)
    execute_card = strawberry.field(resolver=cards_r.execute_card)
    execute_dashboard = strawberry.field(
        resolver=dashboards_r.execute_dashboard, extensions=requires_permission(VIEWER)
    )
    cancel_execution = strawberry.field(resolver=executions_r.cancel_execution)

    create_dashboard = strawberry.field(resolver=dashboards_r.create_dashboard)
    update_dashboard = strawberry.field(
        resolver=dashboards_r.update_dashboard, extensions=requires_permission(EDITOR)
    )
    delete_dashboard = strawberry.field(
        resolver=dashboards_r.delete_dashboard, extensions=requires_permission(OWNER)
    )
    clone_dashboard = strawberry.field(
        resolver=dashboards_r.clone_dashboard, extensions=requires_permission(VIEWER)
    )

    share_dashboard = strawberry.field(
        resolver=dashboards_r.share_dashboard, extensions=requires_permission(OWNER)
    )
    update_dashboard_share = strawberry.field(
        resolver=dashboards_r.update_dashboard_share, extensions=requires_permission(OWNER)
    )
    remove_dashboard_share = strawberry.field(
        resolver=dashboards_r.remove_dashboard_share, extensions=requires_permission(OWNER)
    )

    create_filter_view = strawberry.field(
        resolver=dashboards_r.create_filter_view, extensions=requires_permission(VIEWER)
    )
    update_filter_view = strawberry.field(resolver=dashboards_r.update_filter_view)
    delete_filter_view = strawberry.field(resolver=dashboards_r.delete_filter_view)

    create_transform = strawberry.field(resolver=transforms_r.create_transform)
    update_transform = strawberry.field(resolver=transforms_r.update_transform)
    delete_transform = strawberry.field(resolver=transforms_r.delete_transform)
    execute_transform = strawberry.field(resolver=transforms_r.execute_transform)
