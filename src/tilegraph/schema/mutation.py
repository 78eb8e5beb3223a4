"""The Mutation root."""

from __future__ import annotations

import strawberry

from tilegraph.resolvers import auth as auth_r
from tilegraph.resolvers import groups as groups_r
from tilegraph.resolvers import users as users_r
from tilegraph.schema.access import admin_only


@strawberry.type
class Mutation:
    login = strawberry.field(resolver=auth_r.login)
    logout = strawberry.field(
        resolver=auth_r.logout, description="Revokes the token the request was made with."
    )
    change_password = strawberry.field(resolver=auth_r.change_password)
    create_user = strawberry.field(resolver=users_r.create_user, extensions=admin_only())

    create_group = strawberry.field(resolver=groups_r.create_group, extensions=admin_only())
    update_group = strawberry.field(resolver=groups_r.update_group, extensions=admin_only())
    delete_group = strawberry.field(resolver=groups_r.delete_group, extensions=admin_only())
    add_group_member = strawberry.field(resolver=groups_r.add_group_member, extensions=admin_only())
    remove_group_member = strawberry.field(
        resolver=groups_r.remove_group_member, extensions=admin_only()
    )
