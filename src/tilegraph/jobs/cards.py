"""The card job: execute the run plan the API made (read each planned input with its filters
and columns pushed down to Parquet, run the code in the sandbox), cache the HTML, remember
what the code used. Nothing is looked up again: the plan is the whole truth of the run."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pyarrow as pa
import structlog

from tilegraph.domain.audit import AuditEventType
from tilegraph.domain.card_outputs import TableSummary
from tilegraph.domain.cards import CardResultRecord
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.runs import CardRunPlan, PlannedInput
from tilegraph.executor import (
    CardJob,
    CardOutput,
    Sandbox,
    SandboxLimits,
    SandboxResult,
    job_limits,
)
from tilegraph.executor.plotly_asset import asset_path
from tilegraph.jobs.lifecycle import REDIS_DOWN, ExecutionFailed, ExecutionRun
from tilegraph.services.registry import Services
from tilegraph.store.card_results import CachedCard
from tilegraph.store.cards import execution_from_item, result_event_item
from tilegraph.store.parquet import read_predicate, visible_columns

log = structlog.get_logger("tilegraph.cards")


def sandbox_limits(plan: CardRunPlan) -> SandboxLimits:
    return job_limits(
        plan.limits.timeout_seconds,
        plan.limits.memory_bytes,
        plan.limits.output_max_bytes,
        file_bytes=64 << 20,
        table_bytes=plan.limits.table_max_bytes,
    )


def _projection_may_have_failed(plan: CardRunPlan, result: SandboxResult) -> bool:
    """A projected run that raised: it may have read a column outside the projection."""
    projected = bool(plan.inputs) and plan.inputs[0].columns is not None
    error = result.error
    return projected and error is not None and error.code is ExecutionErrorCode.RUNTIME_ERROR


def read_input(services: Services, planned: PlannedInput) -> pa.Table:
    """Blocking: run in a thread. Filters, the reader's row condition and the projection
    (never a column hidden from the reader) all happen inside the Parquet scan: rows and
    columns the reader may not see never reach the sandbox."""
    scan = services.parquet.dataset(planned.data_prefix)
    expression = read_predicate(list(planned.filters), planned.row_condition, scan.schema)
    columns = visible_columns(scan.schema, planned.columns, planned.hidden_columns)
    return scan.to_table(columns=columns, filter=expression)


def hidden_column_error(plan: CardRunPlan, error: ExecutionError) -> ExecutionError:
    """A run that failed on a column hidden from its reader says so, in place of the
    code's own message."""
    if error.code is not ExecutionErrorCode.RUNTIME_ERROR:
        return error
    for column in plan.hidden_columns:
        if re.search(rf"['\"]{re.escape(column)}['\"]", error.message):
            return ExecutionError(
                ExecutionErrorCode.RUNTIME_ERROR,
                f"Column {column!r} is not available to you",
                error.line,
            )
    return error


class CardRunner:
    def __init__(self, services: Services, sandbox: Sandbox) -> None:
        self.services = services
        self.sandbox = sandbox
        self.plotly_src = services.settings.public_url.rstrip("/") + asset_path()

    async def run(self, run: ExecutionRun, plan: CardRunPlan) -> dict[str, Any]:
        done, html = await self.execute_plan(plan, run.check_cancel, run_id=run.id)
        # The final event carries the HTML itself (within its user's budget of inline HTML);
        # the stored record only its key.
        limit = self.services.settings.event_inline_html_bytes
        size = len(html.encode())
        if size > limit or not await self._inline_allowed(str(run.item["owner_id"]), run.id, size):
            limit = 0
        run.final_event_values = {"result": result_event_item(done.with_html(html), limit)}
        return {"result": done.to_item()}

    async def _inline_allowed(self, owner_id: str, run_id: str, size: int) -> bool:
        """Within the user's budget of inline HTML; not while Redis is away (the result is
        stored: the event then carries its key, and `html` reads it)."""
        try:
            return bool(await self.services.inline_html.allow(owner_id, {run_id: size}))
        except REDIS_DOWN as exc:
            log.warning("inline_budget_unavailable", execution_id=run_id, error=str(exc))
            return False

    async def execute_plan(
        self,
        plan: CardRunPlan,
        check_cancel: Callable[[], Awaitable[None]],
        *,
        run_id: str,
    ) -> tuple[CardResultRecord, str]:
        """Read, run in the sandbox, store the result (and learn what the code used): the
        work of a card run, also done inside a delivery's run. Returns the result and its
        HTML; raises ExecutionFailed."""
        services = self.services
        for planned in plan.inputs:
            if planned.version == 0:
                raise ExecutionFailed.unavailable(f"Dataset {planned.name!r} has no data yet")
        inputs = await asyncio.gather(*(self._read(p) for p in plan.inputs))
        await check_cancel()
        result = await self._execute(plan, inputs)
        reads_undeclared = False
        if _projection_may_have_failed(plan, result):
            # `used_columns` are hints: code that reads a column it did not list fails on the
            # projected read. Run it once more with every column; if that succeeds, the
            # card is never projected again (until its code changes).
            inputs[0] = await self._read(replace(plan.inputs[0], columns=None))
            await check_cancel()
            retried = await self._execute(plan, inputs)
            if retried.error is None:
                log.info("card_projection_widened", execution_id=run_id, card_id=plan.card_id)
                result, reads_undeclared = retried, True
        if result.error is not None:
            raise ExecutionFailed(hidden_column_error(plan, result.error))
        output = result.output
        assert isinstance(output, CardOutput)
        if plan.hidden_columns:  # the code's own lists may name what the reader may not see
            hidden = set(plan.hidden_columns)
            output = replace(
                output,
                used_columns=[c for c in output.used_columns if c not in hidden],
                filter_applicable=[c for c in output.filter_applicable if c not in hidden],
            )
        table = output.table
        summary = (
            TableSummary(tuple(table.column_names), table.num_rows) if table is not None else None
        )
        # The cached copy and what the code used are independent writes: do them together.
        writes = [
            services.card_results.store(
                plan.cache_key,
                CachedCard(
                    output.html,
                    output.used_columns,
                    output.filter_applicable,
                    result.duration_ms,
                    output.metrics,
                    summary,
                ),
                table,
            )
        ]
        learns = output.used_columns or output.filter_applicable or reads_undeclared
        # A reader's run sees only part of the data: what its code used there says nothing
        # reliable about the card as its owner runs it, so only unpoliced runs teach.
        if plan.card_id is not None and learns and not plan.policed:
            writes.append(
                services.repos.cards.learn_columns(
                    plan.card_id,
                    plan.code,
                    output.used_columns,
                    output.filter_applicable,
                    plan.code_hash,
                    reads_undeclared=reads_undeclared,
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
            metrics=output.metrics,
            table=summary,
        )
        return done, output.html

    async def _execute(self, plan: CardRunPlan, inputs: list[pa.Table]) -> SandboxResult:
        return await self.sandbox.run(
            CardJob(
                code=plan.code,
                params=plan.params,
                filters=list(plan.filters),
                inputs=inputs,
                plotly_src=self.plotly_src,
            ),
            sandbox_limits(plan),
        )

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
