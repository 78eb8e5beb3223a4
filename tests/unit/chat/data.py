"""A generated dataset whose statistics are known in closed form (shared with tests)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa

ROWS = 1000
COLUMN_TYPES = {
    "id": "INT64",
    "amount": "FLOAT64",
    "売上": "INT64",
    "region": "STRING",
    "地域": "STRING",
    "customer": "STRING",
    "order_date": "DATE",
    "登録日": "DATETIME",
    "active": "BOOL",
}


def region(i: int) -> str:
    digit = i % 10
    return "East" if digit < 4 else "West" if digit < 7 else "North" if digit < 9 else "South"


def chiiki(i: int) -> str:
    digit = i % 10
    return "東京" if digit < 5 else "大阪" if digit < 8 else "名古屋"


def sales_table(rows: int = ROWS) -> pa.Table:
    """i = 1..rows. amount = i/2 except every 100th row is null; 売上 = 10*i;
    region East 40% / West 30% / North 20% / South 10%; 地域 東京 50% / 大阪 30% / 名古屋 20%;
    customer unique; order_date cycles through 2024; 登録日 hourly from 2023-04-01 10:00."""
    ids = list(range(1, rows + 1))
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "amount": pa.array([None if i % 100 == 0 else i * 0.5 for i in ids], pa.float64()),
            "売上": pa.array([i * 10 for i in ids], pa.int64()),
            "region": pa.array([region(i) for i in ids], pa.string()),
            "地域": pa.array([chiiki(i) for i in ids], pa.string()),
            "customer": pa.array([f"c{i:05d}" for i in ids], pa.string()),
            "order_date": pa.array(
                [date(2024, 1, 1) + timedelta(days=(i - 1) % 366) for i in ids], pa.date32()
            ),
            "登録日": pa.array(
                [datetime(2023, 4, 1, 9) + timedelta(hours=i) for i in ids], pa.timestamp("us")
            ),
            "active": pa.array([i % 3 == 0 for i in ids], pa.bool_()),
        }
    )
