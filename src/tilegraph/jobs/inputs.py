"""The datasets a card or transform run reads, checked before any data is read."""

from __future__ import annotations

from collections.abc import Sequence

from tilegraph.domain.datasets import DatasetRecord
from tilegraph.jobs.lifecycle import ExecutionFailed
from tilegraph.services.registry import Services


async def input_datasets(
    services: Services,
    dataset_ids: Sequence[str],
    *,
    label: str = "Dataset",
    owner_id: str | None = None,
) -> list[DatasetRecord]:
    """In the order given; INPUT_UNAVAILABLE when one was deleted (or, with `owner_id`, is no
    longer that user's) or has no published version yet."""
    found = await services.repos.datasets.get_many(list(dataset_ids))
    datasets = []
    for dataset_id in dataset_ids:
        dataset = found.get(dataset_id)
        if dataset is None or (owner_id is not None and dataset.owner_id != owner_id):
            raise ExecutionFailed.unavailable(f"{label} {dataset_id} was deleted")
        if dataset.version == 0:
            raise ExecutionFailed.unavailable(f"{label} {dataset.name!r} has no data yet")
        datasets.append(dataset)
    return datasets
