"""Cards and transforms that should work, in both sandbox modes."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from tilegraph.domain.filters import ColumnFilter
from tilegraph.executor import CardJob, Sandbox, TransformJob, TransformOutput

from .support import LIMITS, card, html

SEED_CARD = (
    "def render(dataset, filters, params):\n"
    "    import plotly.express as px\n"
    "    fig = px.bar(dataset, x=dataset.columns[0], y=dataset.columns[1])\n"
    "    return HTMLResult(html=fig.to_html())"
)

SALES = pa.table({"region": ["north", "south", "east"], "amount": [10.5, 20.0, 7.25]})


async def test_seed_card_renders_a_plotly_chart(sandbox: Sandbox) -> None:
    result = await sandbox.run(card(SEED_CARD, SALES), LIMITS)
    page = html(result)
    assert page.lstrip().lower().startswith("<html") or "<!doctype html>" in page.lower()
    assert "plotly" in page and "north" in page
    assert result.duration_ms > 0


async def test_card_receives_dataset_filters_and_params(sandbox: Sandbox) -> None:
    code = (
        "import json\n"
        "def render(dataset, filters, params):\n"
        "    return json.dumps({'columns': list(dataset.columns), 'rows': len(dataset),\n"
        "        'total': float(dataset.amount.sum()), 'filters': filters, 'params': params,\n"
        "        'globals': [n for n in ('pd', 'np', 'px', 'go', 'HTMLResult') if n in globals()]})\n"
    )
    filters = [ColumnFilter(column="region", values=("north", "south"))]
    job = CardJob(code=code, params={"title": "Sales"}, filters=filters, inputs=[SALES])
    data = json.loads(html(await sandbox.run(job, LIMITS)))
    assert data == {
        "columns": ["region", "amount"],
        "rows": 3,
        "total": 37.75,
        "filters": {"region": ["north", "south"]},
        "params": {"title": "Sales"},
        "globals": ["pd", "np", "px", "go", "HTMLResult"],
    }


async def test_card_html_result_carries_column_lists(bwrap_sandbox: Sandbox) -> None:
    code = (
        "def render(dataset, filters, params):\n"
        "    fig = go.Figure(go.Bar(x=dataset.region, y=dataset.amount))\n"
        "    return HTMLResult(fig.to_html(include_plotlyjs=False), used_columns=['region', 'amount'],\n"
        "                      filter_applicable=['region'])\n"
    )
    result = await bwrap_sandbox.run(card(code, SALES), LIMITS)
    assert "<div" in html(result)
    assert result.output is not None
    assert result.output.used_columns == ["region", "amount"]  # type: ignore[union-attr]
    assert result.output.filter_applicable == ["region"]  # type: ignore[union-attr]


async def test_card_without_inputs_gets_an_empty_dataframe(bwrap_sandbox: Sandbox) -> None:
    code = "def render(dataset, filters, params):\n    return f'{type(dataset).__name__} {len(dataset)} {params}'\n"
    assert html(await bwrap_sandbox.run(card(code), LIMITS)) == "DataFrame 0 {}"


async def test_transform_function_style_keeps_input_order(sandbox: Sandbox) -> None:
    first = pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    second = pa.table({"id": [2, 3, 4], "score": [0.5, 0.25, 1.0]})
    code = (
        "def transform(inputs, params):\n"
        "    left, right = inputs.values()\n"
        "    merged = left.merge(right, on='id').sort_values('id', ascending=False)\n"
        "    merged['score'] = merged['score'] * params['factor']\n"
        "    merged['keys'] = ','.join(inputs)\n"
        "    return merged\n"
    )
    job = TransformJob(code=code, params={"factor": 4}, inputs=[("ds-b", first), ("ds-a", second)])
    result = await sandbox.run(job, LIMITS)
    assert result.error is None, result.error
    assert isinstance(result.output, TransformOutput)
    table = result.output.table
    assert table.column_names == ["id", "name", "score", "keys"]  # no pandas index column
    assert table.to_pydict() == {
        "id": [3, 2],
        "name": ["c", "b"],
        "score": [1.0, 2.0],
        "keys": ["ds-b,ds-a", "ds-b,ds-a"],
    }


async def test_transform_plain_code_assigns_result(sandbox: Sandbox) -> None:
    left = pa.table({"x": [1, 2, 3]})
    right = pa.table({"y": [10, 20, 30]})
    code = "result = pd.concat([df_0, df_1], axis=1)\nresult['z'] = result.x + result.y + len(inputs)\n"
    result = await sandbox.run(TransformJob(code, None, [("l", left), ("r", right)]), LIMITS)
    assert result.error is None, result.error
    assert isinstance(result.output, TransformOutput)
    assert result.output.table.to_pydict() == {"x": [1, 2, 3], "y": [10, 20, 30], "z": [13, 24, 35]}


async def test_transform_supported_column_types_round_trip(bwrap_sandbox: Sandbox) -> None:
    code = (
        "import datetime as dt\n"
        "result = pd.DataFrame({\n"
        "    'i': [1, None], 'f': [1.5, float('nan')], 'b': [True, False], 's': ['x', None],\n"
        "    'd': [dt.date(2024, 1, 2), None],\n"
        "    't': pd.to_datetime(['2024-01-02T03:04:05', None]),\n"
        "    'cat': pd.Categorical(['u', 'v']),\n"
        "}).astype({'i': 'Int64'})\n"
    )
    result = await bwrap_sandbox.run(TransformJob(code, None, []), LIMITS)
    assert result.error is None, result.error
    assert isinstance(result.output, TransformOutput)
    table = result.output.table
    types = {field.name: field.type for field in table.schema}
    assert pa.types.is_integer(types["i"]) and pa.types.is_floating(types["f"])
    assert pa.types.is_boolean(types["b"]) and pa.types.is_date(types["d"])
    assert pa.types.is_timestamp(types["t"])
    assert pa.types.is_string(types["s"]) or pa.types.is_large_string(types["s"])
    assert pa.types.is_string(types["cat"]) or pa.types.is_large_string(types["cat"])
    rows = table.to_pylist()
    assert rows[0]["d"] == dt.date(2024, 1, 2) and rows[1]["i"] is None
    assert rows[0]["t"] == dt.datetime(2024, 1, 2, 3, 4, 5)


async def test_empty_input_table(bwrap_sandbox: Sandbox) -> None:
    table = pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})
    code = "def render(dataset, filters, params):\n    return f'{len(dataset)} {list(dataset.columns)}'\n"
    assert html(await bwrap_sandbox.run(card(code, table), LIMITS)) == "0 ['a', 's']"


async def test_large_input_arrives_intact(bwrap_sandbox: Sandbox) -> None:
    n = 300_000
    table = pa.table({"a": pa.array(range(n), pa.int64()), "b": pa.array([1.5] * n)})
    code = "def render(dataset, filters, params):\n    return f'{len(dataset)} {dataset.a.sum()} {dataset.b.sum()}'\n"
    assert (
        html(await bwrap_sandbox.run(card(code, table), LIMITS))
        == f"{n} {n * (n - 1) // 2} {1.5 * n}"
    )


async def test_user_code_can_use_its_private_tmp(bwrap_sandbox: Sandbox) -> None:
    code = (
        "import os, tempfile\n"
        "def render(dataset, filters, params):\n"
        "    with tempfile.NamedTemporaryFile('w', delete=False) as f:\n"
        "        f.write('hello')\n"
        "    dataset.to_csv('/tmp/out.csv')\n"
        "    return open(f.name).read() + str('out.csv' in os.listdir('/tmp'))\n"
    )
    assert html(await bwrap_sandbox.run(card(code, SALES), LIMITS)) == "helloTrue"


async def test_input_columns_arrive_typed_and_writable(sandbox: Sandbox) -> None:
    table = pa.table(
        {
            "f": pa.array([1.5, 2.5, 3.5]),
            "i": pa.array([1, 2, 3], pa.int32()),
            "n": pa.array([1, None, 3], pa.int64()),
            "s": pa.array(["a", None, "c"]),
            "b": pa.array([True, False, True]),
            "t": pa.array([dt.datetime(2024, 1, 1), None, dt.datetime(2024, 1, 3)]),
            "d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 2), None]),
        }
    )
    code = (
        "import json\n"
        "def render(dataset, filters, params):\n"
        "    before = dataset.f.sum()\n"
        "    dataset.loc[0, 'f'] = 100.0\n"
        "    dataset['i'] += 10\n"
        "    dataset.iloc[1, 0] = -1.0\n"
        "    return json.dumps({'dtypes': {c: str(t) for c, t in dataset.dtypes.items()},\n"
        "        'f': dataset.f.tolist(), 'i': dataset.i.tolist(), 'before': before,\n"
        "        'nulls': int(dataset.n.isna().sum()), 'index': list(dataset.index)})\n"
    )
    data = json.loads(html(await sandbox.run(card(code, table), LIMITS)))
    assert data["f"] == [100.0, -1.0, 3.5] and data["before"] == 7.5
    assert data["i"] == [11, 12, 13] and data["nulls"] == 1 and data["index"] == [0, 1, 2]
    assert data["dtypes"]["f"] == "float64" and data["dtypes"]["i"] == "int32"
    assert data["dtypes"]["b"] == "bool" and data["dtypes"]["t"].startswith("datetime64")
    assert table.column("f").to_pylist() == [1.5, 2.5, 3.5]  # the worker's copy is untouched
