"""The card job: read the card's datasets with filters (and known columns) pushed down to
Parquet, run the code in the sandbox, cache the HTML, remember what the code used."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import (
    CardRecord,
    CardResultRecord,
    card_cache_key,
    code_fingerprint,
)
from tilegraph.domain.datasets import DatasetRecord
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.filters import ColumnFilter, FilterError, ResolvedFilter, resolve_filters
from tilegraph.executor import CardJob, CardOutput, Sandbox, SandboxLimits, job_limits
from tilegraph.jobs.inputs import input_datasets
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun
from tilegraph.services.registry import Services
from tilegraph.store.card_results import CachedCard
from tilegraph.store.cards import execution_from_item
from tilegraph.store.parquet import filter_expression


def card_limits(services: Services) -> SandboxLimits:
    settings = services.settings
    return job_limits(
        settings.card_timeout_seconds,
        settings.card_memory_bytes,
        settings.card_output_max_bytes,
        file_bytes=64 << 20,
    )


def read_input(
    services: Services,
    dataset: DatasetRecord,
    filters: list[ResolvedFilter],
    columns: list[str] | None,
) -> pa.Table:
    """Blocking: run in a thread. Filters and projection happen inside the Parquet scan."""
    scan = services.parquet.dataset(dataset.data_prefix())
    expression = filter_expression(filters, scan.schema)
    return scan.to_table(columns=columns, filter=expression)


class CardRunner:
    def __init__(self, services: Services, sandbox: Sandbox) -> None:
        self.services = services
        self.sandbox = sandbox

    async def run(self, run: ExecutionRun) -> dict[str, Any]:
        services = self.services
        record = execution_from_item(run.item)
        card: CardRecord | None = None
        if record.card_id:
            card = await services.repos.cards.get(record.card_id)
            if card is None:
                raise ExecutionFailed.unavailable("The card was deleted")
        code = card.code if card else (record.code or "")
        dataset_ids = list(card.dataset_ids) if card else list(record.dataset_ids)
        datasets = await input_datasets(services, dataset_ids)
        filters = [ColumnFilter.from_item(f) for f in record.filters]
        cache_key = card_cache_key(
            code, record.params, record.filters, [(d.id, d.version) for d in datasets]
        )
        ignored = self._ignored(filters, datasets)
        if record.use_cache:
            hit = await services.card_results.lookup(cache_key)
            if hit is not None:
                return {
                    "result": CardResultRecord(
                        cache_key,
                        tuple(hit.used_columns),
                        tuple(hit.filter_applicable),
                        tuple(ignored),
                        True,
                        hit.execution_time_ms,
                    ).to_item()
                }
        inputs = await self._inputs(card, code, datasets, filters)
        await run.check_cancel()
        result = await self.sandbox.run(
            CardJob(code=code, params=record.params, filters=record.filters, inputs=inputs),
            card_limits(services),
        )
        if result.error is not None:
            raise ExecutionFailed(result.error)
        output = result.output
        assert isinstance(output, CardOutput)
        # The cached copy and what the code used are independent writes: do them together.
        writes = [
            services.card_results.store(
                cache_key,
                CachedCard(
                    output.html, output.used_columns, output.filter_applicable, result.duration_ms
                ),
            )
        ]
        if card is not None and (output.used_columns or output.filter_applicable):
            writes.append(
                services.repos.cards.learn_columns(
                    card.id,
                    code,
                    output.used_columns,
                    output.filter_applicable,
                    code_fingerprint(code),
                )
            )
        await asyncio.gather(*writes)
        return {
            "result": CardResultRecord(
                cache_key,
                tuple(output.used_columns),
                tuple(output.filter_applicable),
                tuple(ignored),
                False,
                result.duration_ms,
            ).to_item()
        }

    @staticmethod
    def _ignored(filters: list[ColumnFilter], datasets: list[DatasetRecord]) -> list[str]:
        known = {c.name for d in datasets for c in d.columns}
        return [f.column for f in filters if f.column not in known]

    async def _inputs(
        self,
        card: CardRecord | None,
        code: str,
        datasets: list[DatasetRecord],
        filters: list[ColumnFilter],
    ) -> list[pa.Table]:
        tables = []
        for index, dataset in enumerate(datasets):
            types = {c.name: c.type.value for c in dataset.columns}
            try:
                resolved, _ = resolve_filters(filters, types)
            except FilterError as exc:
                raise ExecutionFailed(
                    ExecutionError(ExecutionErrorCode.BAD_RESULT, str(exc))
                ) from exc
            columns = None
            if (
                index == 0
                and card is not None
                and card.used_columns
                and card.learned_from == code_fingerprint(code)
                and set(card.used_columns) <= set(types)
            ):
                columns = list(card.used_columns)
            try:
                table = await asyncio.to_thread(
                    read_input, self.services, dataset, resolved, columns
                )
            except (OSError, pa.ArrowException) as exc:
                raise ExecutionFailed.unavailable(
                    f"Dataset {dataset.name!r} cannot be read: {exc}"
                ) from exc
            tables.append(table)
        return tables

    async def finished(self, run: ExecutionRun) -> None:
        """Frees the user's queue slot; records failures in the audit log."""
        services = self.services
        record = execution_from_item(run.item)
        await services.card_queue_limit.release(record.owner_id, record.id)
        if record.status is ExecutionStatus.FAILED and record.error is not None:
            await services.audit_recorder.record(
                AuditEventType.CARD_EXECUTION_FAILED,
                user_id=record.owner_id,
                target_type="card" if record.card_id else "preview",
                target_id=record.card_id or record.id,
                details={"executionId": record.id, "code": record.error.code.value},
            )
