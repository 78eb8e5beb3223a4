"""What a dataset policy costs a card run.

The summary card of bench_cards.py over a 1M-row x 10-column dataset, run end to end
(``executeCard`` with ``useCache: false`` until SUCCEEDED) by the dataset's owner, and by a
reader through a dashboard shared with them, whose USER policy has two row filters: one on
a string column (``category``, all 4 values) and one on an integer column (``quantity``,
all 1000 values, compared as text). Both filters keep every row, so the card does the same
work either way and the difference is the policy's own cost (resolving it at admission and
the row condition applied to the scanned rows). A second reader of the same dashboard
without any policy shows what being a reader costs on its own. Runs alternate; p50 of
each and the ratios.

    .venv/bin/python bench/bench_policy.py [--rows 1000000] [--runs 15]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.client import Api  # noqa: E402
from tests.support.dashboards import create_dashboard, share  # noqa: E402

from bench_cards import CATEGORIES, SUMMARY, Client, big_csv, breakdown  # noqa: E402
from common import ADMIN, create_user, load_line, run_on_stack  # noqa: E402

CREATE_POLICY = """mutation($i: CreateDatasetPolicyInput!) { createDatasetPolicy(input: $i) {
  policy { id } } }"""
QUANTITIES = [str(q) for q in range(1000)]


def rows_seen(execution: dict[str, Any]) -> int:
    found = re.search(r"data-rows='(\d+)'", execution["result"]["html"])
    return int(found.group(1)) if found else -1


async def api_part(url: str, ws_url: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    api = Api(url, ws_url)
    out: dict[str, Any] = {"owner": [], "reader": [], "unpoliced": []}
    try:
        token = await api.login(*ADMIN)
        reader = await create_user(api, token, "policy-reader")
        unpoliced = await create_user(api, token, "unpoliced-reader")
        async with (
            api.websocket({"authorization": f"Bearer {token}"}) as owner_session,
            api.websocket({"authorization": f"Bearer {reader['token']}"}) as reader_session,
            api.websocket({"authorization": f"Bearer {unpoliced['token']}"}) as plain_session,
        ):
            for session in (owner_session, reader_session, plain_session):
                assert (await session.receive())["type"] == "connection_ack"
            owner = Client(api, token, owner_session)
            as_reader = Client(api, reader["token"], reader_session)
            as_unpoliced = Client(api, unpoliced["token"], plain_session)
            path = work / "big.csv"
            big_csv(path, args.rows)
            started = time.perf_counter()
            big = await owner.upload("big", path.read_bytes())
            path.unlink()
            print(f"  imported in {time.perf_counter() - started:.1f} s", flush=True)
            dataset = big["dataset"]["id"]
            card = await owner.create_card("summary", SUMMARY, dataset)
            dashboard = (await create_dashboard(api, token, card_ids=[card]))["id"]
            for who in (reader, unpoliced):
                await share(api, token, dashboard, "USER", who["id"], "VIEWER")
            policy = {
                "datasetId": dataset,
                "targetType": "USER",
                "targetId": reader["id"],
                "rowFilters": [
                    {"column": "category", "values": CATEGORIES},
                    {"column": "quantity", "values": QUANTITIES},
                ],
            }
            await api.ok(CREATE_POLICY, {"i": policy}, token=token)
            runs = {
                "owner": lambda: owner.run(card, use_cache=False),
                "reader": lambda: as_reader.run(card, use_cache=False, dashboard_id=dashboard),
                "unpoliced": lambda: as_unpoliced.run(
                    card, use_cache=False, dashboard_id=dashboard
                ),
            }
            for _ in range(2):  # warm-up: file listings, the zygote
                for run in runs.values():
                    await run()
            for _ in range(args.runs):
                for key, run in runs.items():
                    elapsed, execution = await run()
                    out[key].append(elapsed)
                    out.setdefault(f"{key}_runs", []).append(execution)
                    out[f"{key}_rows"] = rows_seen(execution)
    finally:
        await api.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each reader")
    args = parser.parse_args()
    print(load_line(), flush=True)
    out = run_on_stack("bench_policy_", api_part, args)
    med = statistics.median
    owner, reader, unpoliced = med(out["owner"]), med(out["reader"]), med(out["unpoliced"])
    print(load_line())
    print(f"\nthe summary card over {args.rows:,} rows, {args.runs} runs each (useCache false)")
    print(f"  owner (no policy)                    p50 {owner:8.1f} ms, {out['owner_rows']:,} rows")
    print(
        f"  reader (two-filter policy, dashboard) p50 {reader:8.1f} ms, {out['reader_rows']:,} rows"
    )
    print(
        f"  reader, no policy (dashboard)        p50 {unpoliced:8.1f} ms, "
        f"{out['unpoliced_rows']:,} rows"
    )
    for key in ("owner", "reader", "unpoliced"):
        runs = out[f"{key}_runs"]
        print(f"  {key}:" + breakdown(out[key], runs).removeprefix(" "))
        print(
            f"    the executeCard mutation alone: p50 {med(r['mutationMs'] for r in runs):.1f} ms"
        )
    print(f"  ratio policed reader/owner: {reader / owner:.3f} (target <= 1.10)")
    print(f"  ratio policed/unpoliced reader: {reader / unpoliced:.3f}")


if __name__ == "__main__":
    main()
