"""Every repository over one Dynamo handle: what services and loaders are built from."""

from __future__ import annotations

from dataclasses import dataclass

from tilegraph.store.audit import AuditRepository
from tilegraph.store.cards import CardRepository
from tilegraph.store.dashboards import DashboardRepository
from tilegraph.store.datasets import DatasetRepository
from tilegraph.store.deliveries import DeliveryRepository
from tilegraph.store.dynamo import Dynamo
from tilegraph.store.groups import GroupRepository
from tilegraph.store.imports import ImportRepository
from tilegraph.store.placements import PlacementRepository
from tilegraph.store.policies import PolicyRepository
from tilegraph.store.revisions import RevisionRepository
from tilegraph.store.revocations import RevocationRepository
from tilegraph.store.transforms import TransformRepository
from tilegraph.store.users import UserRepository


@dataclass
class Repositories:
    users: UserRepository
    groups: GroupRepository
    audit: AuditRepository
    datasets: DatasetRepository
    imports: ImportRepository
    cards: CardRepository
    dashboards: DashboardRepository
    transforms: TransformRepository
    revocations: RevocationRepository
    policies: PolicyRepository
    revisions: RevisionRepository
    placements: PlacementRepository
    deliveries: DeliveryRepository

    @classmethod
    def over(cls, db: Dynamo) -> Repositories:
        return cls(
            users=UserRepository(db),
            groups=GroupRepository(db),
            audit=AuditRepository(db),
            datasets=DatasetRepository(db),
            imports=ImportRepository(db),
            cards=CardRepository(db),
            dashboards=DashboardRepository(db),
            transforms=TransformRepository(db),
            revocations=RevocationRepository(db),
            policies=PolicyRepository(db),
            revisions=RevisionRepository(db),
            placements=PlacementRepository(db),
            deliveries=DeliveryRepository(db),
        )
