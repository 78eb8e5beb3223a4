from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pytest

from tilegraph.chat.answer import prepare_chat, stream_answer
from tilegraph.chat.events import ChatEvent
from tilegraph.chat.prompt import UnavailableDataset
from tilegraph.chat.providers.base import GroundingContext
from tilegraph.chat.providers.builtin import BuiltinProvider, answer_question, chunks
from tilegraph.chat.summary import DatasetSummary, summarize_table


def ask(
    question: str,
    summaries: Sequence[DatasetSummary],
    unavailable: Sequence[UnavailableDataset] = (),
) -> str:
    return answer_question(question, summaries, unavailable)


ENGLISH = [
    ("How many rows are there?", ["sales has 1,000 rows."]),
    ("how many records does the data have", ["sales has 1,000 rows."]),
    ("What is the average amount?", ["The average of amount is 250.", "10 missing values"]),
    ("What's the mean of 売上?", ["The average of 売上 is 5,005."]),
    ("What is the total amount?", ["The sum of amount is 247,500."]),
    ("min and max of Amount", ["The minimum of amount is 0.5.", "The maximum of amount is 499.5."]),
    ("What is the range of id?", ["The minimum of id is 1.", "The maximum of id is 1,000."]),
    (
        "What are the top regions?",
        ["The most common values of region are: East (400), West (300), North (200), South (100)."],
    ),
    ("Which region is the most common?", ["East (400), West (300)"]),
    (
        "Which columns are there?",
        ["sales has 9 columns: id (INT64), amount (FLOAT64), 売上 (INT64), region (STRING)"],
    ),
    (
        "What is the date range?",
        [
            "order_date ranges from 2024-01-01 to 2024-12-31.",
            "登録日 ranges from 2023-04-01T10:00:00",
        ],
    ),
    ("From when is the order date data?", ["order_date ranges from 2024-01-01 to 2024-12-31."]),
    ("How many distinct customers are there?", ["customer has 1,000 distinct values."]),
    ("How many regions are there?", ["region has 4 distinct values."]),
    ("Give me an overview of the data", ["sales has 1,000 rows.\nsales has 9 columns: id (INT64)"]),
    (
        "How many missing values does amount have?",
        ["amount has 10 missing values out of 1,000 rows."],
    ),
    ("Tell me about amount", ["amount (FLOAT64): min 0.5, max 499.5, average 250, sum 247,500"]),
    (
        "What is the average?",
        ["Which column do you mean? The numeric columns are: id, amount, 売上."],
    ),
]

JAPANESE = [
    ("何件ありますか？", ["sales の件数は 1,000 件です。"]),
    ("データの行数は？", ["sales の件数は 1,000 件です。"]),
    ("売上の平均は？", ["売上 の平均は 5,005 です。"]),
    ("売上の合計はいくら？", ["売上 の合計は 5,005,000 です。"]),
    ("amountの平均を教えて", ["amount の平均は 250 です。", "欠損値 10 件は含みません"]),
    ("売上の最大値と最小値は？", ["売上 の最小値は 10 です。", "売上 の最大値は 10,000 です。"]),
    ("地域で一番多いのは？", ["地域 の上位の値: 東京 (500 件)、大阪 (300 件)、名古屋 (200 件)。"]),
    ("region の上位は？", ["region の上位の値: East (400 件)、West (300 件)"]),
    ("どんな列がありますか？", ["sales の列（9 個）: id (INT64)、amount (FLOAT64)、売上 (INT64)"]),
    ("order_dateの期間は？", ["order_date の期間は 2024-01-01 から 2024-12-31 までです。"]),
    (
        "いつからいつまでのデータですか？",
        ["order_date の期間は", "登録日 の期間は 2023-04-01T10:00:00 から"],
    ),
    ("地域の種類はいくつ？", ["地域 の異なる値は 3 種類です。"]),
    ("データの概要を教えて", ["sales の件数は 1,000 件です。\nsales の列（9 個）"]),
    ("ＡＭＯＵＮＴの合計は？", ["amount の合計は 247,500 です。"]),  # full-width letters
]


@pytest.mark.parametrize(("question", "expected"), ENGLISH + JAPANESE)
def test_builtin_answers(summary: DatasetSummary, question: str, expected: list[str]) -> None:
    answer = ask(question, [summary])
    for part in expected:
        assert part in answer, answer


def test_answers_follow_the_question_language(summary: DatasetSummary) -> None:
    assert "です" not in ask("What is the average amount?", [summary])
    assert "The average" not in ask("amountの平均は？", [summary])


@pytest.mark.parametrize(
    "question", ["Write a poem about the weather", "Why did sales drop in May?"]
)
def test_free_form_questions_get_the_configure_a_provider_answer(
    summary: DatasetSummary, question: str
) -> None:
    answer = ask(question, [summary])
    assert "To ask free-form questions, configure an LLM provider" in answer
    assert "TILEGRAPH_CHAT_PROVIDER=openai" in answer


def test_a_named_column_without_a_known_question_is_described_with_the_hint(
    summary: DatasetSummary,
) -> None:
    answer = ask("Write a poem about our customers' feelings", [summary])
    assert answer.startswith("No value of customer occurs more than once (1,000 distinct values).")
    assert answer.endswith(
        "To ask free-form questions, configure an LLM provider"
        " (TILEGRAPH_CHAT_PROVIDER=openai or vertex)."
    )


def test_free_form_japanese_question_gets_japanese_fallback(summary: DatasetSummary) -> None:
    answer = ask("この会社の将来について教えて", [summary])
    assert "自由な質問をするには LLM プロバイダーを設定してください" in answer
    assert "TILEGRAPH_CHAT_PROVIDER=openai" in answer


def test_several_datasets_and_an_unavailable_one(summary: DatasetSummary) -> None:
    returns = summarize_table(
        pa.table({"amount": [1.0, 2.0, 6.0], "reason": ["late", "broken", "late"]}),
        dataset_id="ds_returns",
        name="returns",
        version=1,
    )
    missing = [UnavailableDataset("inventory", "its data could not be read")]
    both = ask("How many rows are there?", [summary, returns], missing)
    assert "sales has 1,000 rows." in both and "returns has 3 rows." in both
    assert "Note: inventory could not be read, so it is not included." in both
    only = ask("How many rows does returns have?", [summary, returns])
    assert only == "returns has 3 rows."
    mean = ask("average amount in returns", [summary, returns])
    assert mean == "The average of amount (returns) is 3."
    assert "注意: inventory は読み込めなかったため" in ask("何件？", [summary], missing)


def test_no_readable_dataset(summary: DatasetSummary) -> None:
    missing = [UnavailableDataset("sales", "its data could not be read")]
    assert "could not read the data" in ask("How many rows?", [], missing)
    assert "no datasets" in ask("How many rows?", [])


def test_longest_column_name_wins() -> None:
    table = pa.table({"price": [1.0, 3.0], "unit_price": [10.0, 30.0]})
    summary = summarize_table(table, dataset_id="d", name="items", version=1)
    assert ask("average unit price", [summary]) == "The average of unit_price is 20."
    assert ask("average price", [summary]) == "The average of price is 2."


def test_chunks_rejoin_to_the_text() -> None:
    for text in [
        "The average of amount is 250.",
        "地域 の上位の値: 東京 (500 件)、大阪 (300 件)。",
        "  a  b ",
    ]:
        pieces = chunks(text)
        assert "".join(pieces) == text
        assert len(pieces) > 1
        assert all(len(p) <= 16 for p in pieces)


async def collect(events: object) -> list[ChatEvent]:
    return [event async for event in events]  # type: ignore[attr-defined]


async def test_builtin_streams_tokens_then_done(summary: DatasetSummary) -> None:
    question = "What are the top regions?"
    prepared = prepare_chat(
        dashboard_name="Sales",
        cards=[],
        summaries=[summary],
        unavailable=[],
        history=[],
        question=question,
    )
    events = await collect(stream_answer(BuiltinProvider(), prepared))
    assert [e.type for e in events[:-1]] == ["TOKEN"] * (len(events) - 1)
    assert len(events) > 5
    assert events[-1] == ChatEvent.done()
    assert "".join(e.text or "" for e in events[:-1]) == ask(question, [summary])


async def test_builtin_failure_is_one_error_event(summary: DatasetSummary) -> None:
    def broken(*_: object) -> str:
        raise RuntimeError("boom at /srv/secret/path")

    context = GroundingContext(dashboard_name="D", question="q", summaries=(summary,))
    events = await collect(BuiltinProvider(answer=broken).stream([], context=context))
    assert events == [ChatEvent.failed("the built-in assistant could not answer this question")]
