"""The loaders of one request, created lazily so unused ones cost nothing."""

from __future__ import annotations

from functools import cached_property

from tilegraph.domain.audit import AuditRecord
from tilegraph.domain.cards import CardExecutionRecord, CardRecord
from tilegraph.domain.dashboards import DashboardRecord, FilterViewRecord, ShareRecord
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.deliveries import DeliveryRecord, DeliveryRunRecord
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.policies import DatasetPolicyRecord
from tilegraph.domain.revisions import RevisionRecord
from tilegraph.domain.transforms import TransformRecord, TransformRunRecord
from tilegraph.domain.users import GroupRecord, UserRecord
from tilegraph.loaders.lists import ListLoader
from tilegraph.loaders.records import RecordLoader
from tilegraph.store.repositories import Repositories


class Loaders:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    @cached_property
    def users(self) -> RecordLoader[UserRecord]:
        return RecordLoader(self.repos.users.get_many)

    @cached_property
    def groups(self) -> RecordLoader[GroupRecord]:
        return RecordLoader(self.repos.groups.get_many)

    @cached_property
    def datasets(self) -> RecordLoader[DatasetRecord]:
        return RecordLoader(self.repos.datasets.get_many)

    @cached_property
    def policies(self) -> RecordLoader[DatasetPolicyRecord]:
        return RecordLoader(self.repos.policies.get_many)

    @cached_property
    def policies_of_dataset(self) -> ListLoader[DatasetPolicyRecord]:
        return ListLoader(self.repos.policies.of_dataset)

    @cached_property
    def revisions(self) -> RecordLoader[RevisionRecord]:
        return RecordLoader(self.repos.revisions.get_many)

    @cached_property
    def imports(self) -> RecordLoader[ImportRecord]:
        return RecordLoader(self.repos.imports.get_many)

    @cached_property
    def cards(self) -> RecordLoader[CardRecord]:
        return RecordLoader(self.repos.cards.get_many)

    @cached_property
    def card_executions(self) -> RecordLoader[CardExecutionRecord]:
        return RecordLoader(self.repos.cards.get_executions)

    @cached_property
    def transforms(self) -> RecordLoader[TransformRecord]:
        return RecordLoader(self.repos.transforms.get_many)

    @cached_property
    def transform_runs(self) -> RecordLoader[TransformRunRecord]:
        return RecordLoader(self.repos.transforms.get_runs)

    @cached_property
    def deliveries(self) -> RecordLoader[DeliveryRecord]:
        return RecordLoader(self.repos.deliveries.get_many)

    @cached_property
    def delivery_runs(self) -> RecordLoader[DeliveryRunRecord]:
        return RecordLoader(self.repos.deliveries.get_runs)

    @cached_property
    def deliveries_of_dashboard(self) -> ListLoader[DeliveryRecord]:
        return ListLoader(self.repos.deliveries.of_dashboard)

    @cached_property
    def audit_logs(self) -> RecordLoader[AuditRecord]:
        return RecordLoader(self.repos.audit.get_many)

    @cached_property
    def dashboards(self) -> RecordLoader[DashboardRecord]:
        return RecordLoader(self.repos.dashboards.get_many)

    @cached_property
    def shares(self) -> RecordLoader[ShareRecord]:
        return RecordLoader(self.repos.dashboards.get_shares)

    @cached_property
    def filter_views(self) -> RecordLoader[FilterViewRecord]:
        return RecordLoader(self.repos.dashboards.get_views)

    @cached_property
    def shares_of_dashboard(self) -> ListLoader[ShareRecord]:
        return ListLoader(self.repos.dashboards.shares_of)

    @cached_property
    def views_of_dashboard(self) -> ListLoader[FilterViewRecord]:
        return ListLoader(self.repos.dashboards.views_of)

    @cached_property
    def groups_of_user(self) -> ListLoader[str]:
        return ListLoader(self.repos.groups.group_ids_of)

    # ---------------------------------------------------------------- lineage

    @cached_property
    def cards_using_dataset(self) -> ListLoader[CardRecord]:
        """By dataset id: its owner's cards that read it (a card reads only its owner's
        datasets); the datasets are read through `datasets`, so once per request."""

        async def fetch(dataset_id: str) -> list[CardRecord]:
            dataset = await self.datasets.load(dataset_id)
            if dataset is None:
                return []
            return await self.repos.cards.using_dataset(dataset.owner_id, dataset_id)

        return ListLoader(fetch)

    @cached_property
    def transforms_using_dataset(self) -> ListLoader[TransformRecord]:
        """By dataset id: its owner's transforms that read it."""

        async def fetch(dataset_id: str) -> list[TransformRecord]:
            dataset = await self.datasets.load(dataset_id)
            if dataset is None:
                return []
            return await self.repos.transforms.using_dataset(dataset.owner_id, dataset_id)

        return ListLoader(fetch)

    @cached_property
    def dashboards_showing_card(self) -> ListLoader[str]:
        """By card id: the ids of the dashboards whose layout holds it, whoever owns them."""
        return ListLoader(self.repos.placements.dashboards_showing)
