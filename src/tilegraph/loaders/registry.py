"""The loaders of one request, created lazily so unused ones cost nothing."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from tilegraph.domain.cards import CardRecord
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.users import GroupRecord, UserRecord
from tilegraph.loaders.records import RecordLoader

if TYPE_CHECKING:
    from tilegraph.services.registry import Services


class Loaders:
    def __init__(self, services: Services) -> None:
        self.services = services

    @cached_property
    def users(self) -> RecordLoader[UserRecord]:
        return RecordLoader(self.services.repos.users.get_many)

    @cached_property
    def groups(self) -> RecordLoader[GroupRecord]:
        return RecordLoader(self.services.repos.groups.get_many)

    @cached_property
    def datasets(self) -> RecordLoader[DatasetRecord]:
        return RecordLoader(self.services.repos.datasets.get_many)

    @cached_property
    def imports(self) -> RecordLoader[ImportRecord]:
        return RecordLoader(self.services.repos.imports.get_many)

    @cached_property
    def cards(self) -> RecordLoader[CardRecord]:
        return RecordLoader(self.services.repos.cards.get_many)
