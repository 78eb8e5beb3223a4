"""A card's metrics and table, out of a real sandbox: both ways of returning them, the rules
the child applies, the table's size cap, and the worker's own checks of what the child says."""

from __future__ import annotations

import pyarrow as pa

from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode
from tilegraph.executor import CardOutput, Sandbox, SandboxResult

from .support import LIMITS, MiB, card, limits

Code = ExecutionErrorCode


def output_of(result: SandboxResult) -> CardOutput:
    assert result.error is None, result.error
    assert isinstance(result.output, CardOutput)
    return result.output


def error_of(result: SandboxResult, code: ExecutionErrorCode) -> ExecutionError:
    assert result.output is None, result.output
    assert result.error is not None and result.error.code == code, result.error
    return result.error


def returning(value: str, setup: str = "") -> str:
    body = "".join(f"    {line}\n" for line in setup.splitlines())
    return f"def render(dataset, filters, params):\n{body}    return {value}\n"


async def test_metrics_and_table_come_back_with_the_html(sandbox: Sandbox) -> None:
    code = returning(
        "HTMLResult(html='<b>hi</b>' * 3, used_columns=['x'], metrics=m, table=t)",
        "t = pd.DataFrame({'x': dataset.x, 'label': ['a', None, 'c'],"
        " 'day': pd.to_datetime(['2024-01-01', '2024-01-02', None])})\n"
        "m = {'total': float(dataset.x.sum()) + 0.5, 'count': len(dataset),"
        " 'numpy': dataset.x.sum()}",
    )
    output = output_of(await sandbox.run(card(code, pa.table({"x": [1, 2, 3]})), LIMITS))
    assert output.html == "<b>hi</b>" * 3 and output.used_columns == ["x"]
    assert output.metrics == {"total": 6.5, "count": 3, "numpy": 6}
    assert isinstance(output.metrics["numpy"], int)
    assert output.table is not None
    assert output.table.column_names == ["x", "label", "day"]
    assert output.table.column("x").to_pylist() == [1, 2, 3]
    assert output.table.column("label").to_pylist() == ["a", None, "c"]
    assert pa.types.is_timestamp(output.table.schema.field("day").type)


async def test_a_dict_result_carries_them_too_and_none_means_none(bwrap_sandbox: Sandbox) -> None:
    code = returning("{'html': 'x', 'metrics': {'n': 1}, 'table': pd.DataFrame({'a': [1.5]})}")
    output = output_of(await bwrap_sandbox.run(card(code), LIMITS))
    assert output.metrics == {"n": 1} and output.table is not None
    assert output.table.column("a").to_pylist() == [1.5]
    plain = output_of(await bwrap_sandbox.run(card(returning("HTMLResult('x')")), LIMITS))
    assert plain.metrics is None and plain.table is None


async def test_bad_metrics_are_bad_results_naming_the_metric(bwrap_sandbox: Sandbox) -> None:
    cases = {
        "{'x': 'a'}": "Metric 'x' must be a number (int or float), not str",
        "{'x': float('nan')}": "Metric 'x' must be a finite number, not nan",
        "{'x': float('inf')}": "Metric 'x' must be a finite number, not inf",
        "{'flag': True}": "Metric 'flag' must be a number (int or float), not bool",
        "{'': 1}": "Metric name '' must be a non-empty string",
        "{'n' * 101: 1}": "at most 100 characters",
        "{f'm{i}': i for i in range(101)}": "HTMLResult.metrics has 101 entries; at most 100",
        "[1, 2]": "HTMLResult.metrics must be a dict of name → number, not list",
        "{'x': 1e300}": "Metric 'x' is out of range",
    }
    for metrics, message in cases.items():
        code = returning(f"HTMLResult(html='x', metrics={metrics})")
        error = error_of(await bwrap_sandbox.run(card(code), LIMITS), Code.BAD_RESULT)
        assert message in error.message, (metrics, error.message)


async def test_bad_tables_are_bad_results_naming_the_column(bwrap_sandbox: Sandbox) -> None:
    nested = returning("HTMLResult(html='x', table=pd.DataFrame({'ok': [1], 'nested': [[1, 2]]}))")
    error = error_of(await bwrap_sandbox.run(card(nested), LIMITS), Code.BAD_RESULT)
    assert "Column 'nested' of HTMLResult.table has unsupported type list<item: int64>" in (
        error.message
    )
    series = returning("HTMLResult(html='x', table=pd.Series([1]))")
    error = error_of(await bwrap_sandbox.run(card(series), LIMITS), Code.BAD_RESULT)
    assert "HTMLResult.table must be a pandas DataFrame, not Series" in error.message
    wide = returning("HTMLResult(html='x', table=pd.DataFrame({f'c{i}': [1] for i in range(300)}))")
    error = error_of(await bwrap_sandbox.run(card(wide), LIMITS), Code.BAD_RESULT)
    assert "at most 256 columns" in error.message


async def test_a_table_over_its_cap_is_output_too_large(bwrap_sandbox: Sandbox) -> None:
    code = returning("HTMLResult(html='x', table=pd.DataFrame({'x': np.arange(300_000)}))")
    error = error_of(
        await bwrap_sandbox.run(card(code), limits(max_table_bytes=1 * MiB)),
        Code.OUTPUT_TOO_LARGE,
    )
    assert "card's table (HTMLResult.table) is 2.3 MiB; the limit is 1.0 MiB" in error.message
    # The HTML cap is its own: a table bigger than it still fits under the table cap.
    output = output_of(
        await bwrap_sandbox.run(
            card(code), limits(max_output_bytes=1 * MiB, max_table_bytes=4 * MiB)
        )
    )
    assert output.table is not None and output.table.num_rows == 300_000


async def test_html_of_any_length_leaves_the_table_readable(sandbox: Sandbox) -> None:
    """The table starts at an aligned offset after the HTML, whatever the HTML's length."""
    for length in (0, 1, 63, 64, 65, 4097):
        code = returning(
            f"HTMLResult(html='é' * {length}, table=pd.DataFrame({{'n': [{length}]}}))"
        )
        output = output_of(await sandbox.run(card(code), LIMITS))
        assert output.html == "é" * length
        assert output.table is not None and output.table.column("n").to_pylist() == [length]


async def test_the_worker_checks_metrics_the_child_let_through(bwrap_sandbox: Sandbox) -> None:
    """Code that switches off the child's checks still gets a BAD_RESULT, from the worker."""
    code = (
        "runner = __builtins__['__import__'].__globals__  # the child's runner module\n"
        "runner['_metrics'] = lambda value, what: value\n"
        "def render(dataset, filters, params):\n"
        "    return HTMLResult(html='x', metrics={'x': 'not a number'})\n"
    )
    error = error_of(await bwrap_sandbox.run(card(code), LIMITS), Code.BAD_RESULT)
    assert "Metric 'x' must be a number (int or float), not str" in error.message
