"""The card job: execute the run plan the API made (read each planned input with its filters
and columns pushed down to Parquet, run the code in the sandbox), cache the HTML, remember
what the code used. Nothing is looked up again: the plan is the whole truth of the run."""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.cards import CardResultRecord
from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.runs import CardRunPlan, PlannedInput
from tilegraph.executor import CardJob, CardOutput, Sandbox, SandboxLimits, job_limits
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun
from tilegraph.services.registry import Services
from tilegraph.store.card_results import CachedCard
from tilegraph.store.cards import execution_from_item, result_event_item
from tilegraph.store.parquet import filter_expression


def sandbox_limits(plan: CardRunPlan) -> SandboxLimits:
    return job_limits(
        plan.limits.timeout_seconds,
        plan.limits.memory_bytes,
        plan.limits.output_max_bytes,
        file_bytes=64 << 20,
    )


def read_input(services: Services, planned: PlannedInput) -> pa.Table:
    """Blocking: run in a thread. Filters and projection happen inside the Parquet scan."""
    scan = services.parquet.dataset(planned.data_prefix)
    expression = filter_expression(list(planned.filters), scan.schema)
    columns = list(planned.columns) if planned.columns is not None else None
    return scan.to_table(columns=columns, filter=expression)


class CardRunner:
    def __init__(self, services: Services, sandbox: Sandbox) -> None:
        self.services = services
        self.sandbox = sandbox

    async def run(self, run: ExecutionRun, plan: CardRunPlan) -> dict[str, Any]:
        services = self.services
        for planned in plan.inputs:
            if planned.version == 0:
                raise ExecutionFailed.unavailable(f"Dataset {planned.name!r} has no data yet")
        inputs = await asyncio.gather(*(self._read(p) for p in plan.inputs))
        await run.check_cancel()
        result = await self.sandbox.run(
            CardJob(code=plan.code, params=plan.params, filters=list(plan.filters), inputs=inputs),
            sandbox_limits(plan),
        )
        if result.error is not None:
            raise ExecutionFailed(result.error)
        output = result.output
        assert isinstance(output, CardOutput)
        # The cached copy and what the code used are independent writes: do them together.
        writes = [
            services.card_results.store(
                plan.cache_key,
                CachedCard(
                    output.html, output.used_columns, output.filter_applicable, result.duration_ms
                ),
            )
        ]
        if plan.card_id is not None and (output.used_columns or output.filter_applicable):
            writes.append(
                services.repos.cards.learn_columns(
                    plan.card_id,
                    plan.code,
                    output.used_columns,
                    output.filter_applicable,
                    plan.code_hash,
                )
            )
        await asyncio.gather(*writes)
        done = CardResultRecord(
            plan.cache_key,
            tuple(output.used_columns),
            tuple(output.filter_applicable),
            plan.ignored_filters,
            False,
            result.duration_ms,
        )
        # The final event carries the HTML itself (within its user's budget of inline HTML);
        # the stored record only its key.
        limit = services.settings.event_inline_html_bytes
        size = len(output.html.encode())
        if size > limit or not await services.inline_html.allow(
            str(run.item["owner_id"]), {run.id: size}
        ):
            limit = 0
        run.final_event_values = {"result": result_event_item(done.with_html(output.html), limit)}
        return {"result": done.to_item()}

    async def _read(self, planned: PlannedInput) -> pa.Table:
        try:
            return await asyncio.to_thread(read_input, self.services, planned)
        except (OSError, pa.ArrowException) as exc:
            raise ExecutionFailed.unavailable(
                f"Dataset {planned.name!r} cannot be read: {exc}"
            ) from exc

    async def finished(self, run: ExecutionRun) -> None:
        """Frees the user's queue slot; records failures in the audit log."""
        services = self.services
        record = execution_from_item(run.item)
        await services.run_allowance.release(record.owner_id, record.id)
        if record.status is ExecutionStatus.FAILED and record.error is not None:
            await services.audit_recorder.record(
                AuditEventType.CARD_EXECUTION_FAILED,
                user_id=record.owner_id,
                target_type="card" if record.card_id else "preview",
                target_id=record.card_id or record.id,
                details={"executionId": record.id, "code": record.error.code.value},
            )
