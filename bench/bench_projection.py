"""Why column projection exists, and what the plotly rewrite saves.

(a) A card reading 2 of 20 columns of a 1M-row dataset, run end to end (``executeCard``
with ``useCache: false`` until SUCCEEDED): the same code as two cards, one that lists the
two columns in ``used_columns`` (its runs after the first read only those) and one that
lists none (every run reads all 20). Runs alternate between the two; p50 of each and the
ratio.
(b) A default plotly bar chart (``fig.to_html()``, plotly.js inlined) as the card wrote it
and as the run returns it (one ``<script src>`` to the API's own plotly.js), in bytes.

    .venv/bin/python bench/bench_projection.py [--rows 1000000] [--runs 9]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.client import Api  # noqa: E402

from bench_cards import Client  # noqa: E402
from common import ADMIN, load_line, run_on_stack  # noqa: E402

COLUMNS = 20
READS_TWO = """def render(dataset, filters, params):
    total = float((dataset["c0"] * dataset["c1"]).sum())
    return HTMLResult(html=f"<p>{total:.3f}</p>", used_columns={declared})
"""
BAR = """import plotly.express as px

def render(dataset, filters, params):
    top = dataset.head(10)
    return px.bar(top, x="c0", y="c1").to_html()
"""


def wide_csv(path: Path, rows: int) -> None:
    """``rows`` x 20 float columns."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(7)
    table = pa.table({f"c{i}": np.round(rng.random(rows) * 1000, 3) for i in range(COLUMNS)})
    pcsv.write_csv(table, str(path))


def inline_bar_bytes() -> int:
    """What the card's own `to_html()` makes, before the run rewrites it."""
    import plotly.express as px

    frame = {"c0": list(range(10)), "c1": [float(i) for i in range(10)]}
    return len(px.bar(frame, x="c0", y="c1").to_html().encode())


async def api_part(url: str, ws_url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    api = Api(url, ws_url)
    out: dict[str, Any] = {}
    try:
        token = await api.login(*ADMIN)
        async with api.websocket({"authorization": f"Bearer {token}"}) as session:
            assert (await session.receive())["type"] == "connection_ack"
            client = Client(api, token, session)
            path = work / "wide.csv"
            wide_csv(path, args.rows)
            out["mb"] = path.stat().st_size / 1e6
            started = time.perf_counter()
            wide = await client.upload("wide", path.read_bytes())
            out["import_s"] = time.perf_counter() - started
            path.unlink()
            print(f"  {out['mb']:.0f} MB imported in {out['import_s']:.1f} s", flush=True)
            dataset = wide["dataset"]["id"]
            projected = await client.create_card(
                "lists its columns", READS_TWO.replace("{declared}", '["c0", "c1"]'), dataset
            )
            whole = await client.create_card(
                "lists none", READS_TWO.replace("{declared}", "[]"), dataset
            )
            for card in (projected, whole):  # the first run of each reads everything
                await client.run(card, use_cache=False)
            out["projected"], out["whole"] = [], []
            for _ in range(args.runs):
                for card, key in ((projected, "projected"), (whole, "whole")):
                    elapsed, _ = await client.run(card, use_cache=False)
                    out[key].append(elapsed)
            bar = await client.create_card("bar", BAR, dataset)
            _, execution = await client.run(bar, use_cache=False)
            out["bar_after"] = len(execution["result"]["html"].encode())
            out["bar_before"] = inline_bar_bytes()
    finally:
        await api.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each card")
    args = parser.parse_args()
    print(load_line(), flush=True)
    out = run_on_stack("bench_projection_", api_part, args)
    med = statistics.median
    print(load_line())
    print(f"\n(a) a card reading 2 of {COLUMNS} columns of {args.rows:,} rows, {args.runs} runs")
    print(f"  projected to its used_columns   p50 {med(out['projected']):8.1f} ms")
    print(f"  every column                    p50 {med(out['whole']):8.1f} ms")
    print(f"  ratio every/projected: {med(out['whole']) / med(out['projected']):.1f}x")
    print("\n(b) a default plotly bar chart's HTML (fig.to_html())")
    print(f"  as the card wrote it (plotly.js inlined): {out['bar_before']:>9,} bytes")
    print(f"  as the run returns it (one <script src>): {out['bar_after']:>9,} bytes")
    print(f"  ratio: {out['bar_before'] / out['bar_after']:.0f}x smaller")


if __name__ == "__main__":
    main()
