"""The default provider: answers simple questions from the dataset summaries, without a model.

It recognises, in English and Japanese, questions about row counts, the columns, the
minimum / maximum / average / sum of a numeric column, the most common values of a text
column, distinct and missing counts and date ranges, finding the column by its name in the
question. Anything else gets a clear answer that free-form questions need an LLM provider.
Answers are in Japanese when the question contains Japanese, and stream word by word like a
model's would, so clients need no special case.
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass

from tilegraph.chat.events import ChatEvent
from tilegraph.chat.formatting import format_number, is_japanese
from tilegraph.chat.prompt import Message, UnavailableDataset
from tilegraph.chat.providers.base import GroundingContext
from tilegraph.chat.summary import ColumnSummary, DatasetSummary

log = logging.getLogger(__name__)

CHUNK_CHARS = 8


# Each intent is (English pattern, Japanese pattern). English patterns run on the normalised
# question (NFKC, lower case, "_-./" as spaces); Japanese ones on its NFKC form.
MIN = (
    re.compile(r"\b(min|minimum|lowest|smallest)\b"),
    re.compile(r"最小|最低|最も(低|小)|一番(低|小)"),
)
MAX = (
    re.compile(r"\b(max|maximum|highest|largest|biggest|greatest)\b"),
    re.compile(r"最大|最高|最も(高|大き)|一番(高|大き)"),
)
MEAN = (re.compile(r"\b(mean|average|avg)\b"), re.compile(r"平均"))
SUM = (re.compile(r"\b(sum|total)\b"), re.compile(r"合計|総計|総和|総額"))
RANGE = (re.compile(r"\brange\b"), re.compile(r"範囲"))
TOP = (
    re.compile(r"\btop\b|\bmost (common|frequent|popular|often)\b|\bfrequent|\bpopular\b"),
    re.compile(r"上位|多い|最頻|頻出|ランキング|トップ|よく出る"),
)
DISTINCT = (re.compile(r"\b(distinct|unique|different)\b"), re.compile(r"種類|ユニーク|異なる"))
MISSING = (re.compile(r"\b(missing|null|nulls|empty|blank)\b"), re.compile(r"欠損|欠測|空欄|null"))
DATES = (
    re.compile(
        r"\bdate range\b|\bperiod\b|\bfrom when\b|\bsince when\b|\buntil when\b|\bearliest\b"
        r"|\blatest\b|\btime span\b|\bwhich dates\b|\bwhat dates\b|\bwhen\b.*\b(start|begin|end)"
    ),
    re.compile(r"期間|いつから|いつまで|日付の範囲|最初の日|最後の日|何日から|何日まで"),
)
ROWS = (
    re.compile(
        r"\bhow many\b.*\b(rows?|records?|entries|lines)\b"
        r"|\b(number|count|total) of (rows|records|entries)\b|\b(row|record) count\b"
        r"|\bhow (big|large)\b"
    ),
    re.compile(r"件数|行数|何件|何行|レコード数|データ数|件ありますか|行ありますか"),
)
HOW_MANY = (re.compile(r"\bhow many\b"), re.compile(r"いくつ|どれくらい|どのくらい"))
COLUMNS = (
    re.compile(r"\b(columns|fields|schema)\b|\b(which|what) (column|field)s?\b"),
    re.compile(r"列|カラム|項目|フィールド"),
)

OVERVIEW = (
    re.compile(r"\b(summary|summari[sz]e|overview|describe)\b"),
    re.compile(r"概要|要約|まとめ"),
)


@dataclass(frozen=True)
class _Ref:
    """A column the question names, in the dataset that has it."""

    dataset: DatasetSummary
    column: ColumnSummary


class _Question:
    """The question in the two forms the patterns need, and which patterns it matches."""

    def __init__(self, text: str) -> None:
        self.nfkc = unicodedata.normalize("NFKC", text)
        self.normalised = _normalise(text)

    def has(self, patterns: tuple[re.Pattern[str], re.Pattern[str]]) -> bool:
        english, japanese = patterns
        return bool(english.search(self.normalised) or japanese.search(self.nfkc))


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[_\-./]+", " ", text).split())


def _name_spans(name: str, question: _Question) -> list[tuple[int, int]]:
    """Where a column or dataset name occurs in the normalised question (plural s/es too)."""
    key = _normalise(name)
    if not key:
        return []
    if key.isascii():
        pattern = rf"(?<![a-z0-9]){re.escape(key)}(?:s|es)?(?![a-z0-9])"
    else:
        pattern = re.escape(key)  # Japanese names are not separated by spaces
    return [m.span() for m in re.finditer(pattern, question.normalised)]


def _mentioned_datasets(
    summaries: Sequence[DatasetSummary], question: _Question
) -> list[DatasetSummary]:
    return [s for s in summaries if _name_spans(s.name, question)]


def _mentioned_columns(summaries: Sequence[DatasetSummary], question: _Question) -> list[_Ref]:
    """Columns named in the question; a name inside a longer matched name does not count."""
    found: list[tuple[tuple[int, int], _Ref]] = []
    for summary in summaries:
        for column in summary.columns:
            for span in _name_spans(column.name, question):
                found.append((span, _Ref(summary, column)))
    refs: list[_Ref] = []
    for span, ref in found:
        inside_longer = any(
            other[0] <= span[0]
            and span[1] <= other[1]
            and (other[1] - other[0]) > (span[1] - span[0])
            for other, _ in found
        )
        if not inside_longer and ref not in refs:
            refs.append(ref)
    return refs


class _Answerer:
    """Builds the answer text for one question."""

    def __init__(
        self,
        question: str,
        summaries: Sequence[DatasetSummary],
        unavailable: Sequence[UnavailableDataset],
    ) -> None:
        self.q = _Question(question)
        self.summaries = list(summaries)
        self.unavailable = list(unavailable)
        mentioned = _mentioned_datasets(self.summaries, self.q)
        self.scope = mentioned or self.summaries
        refs = _mentioned_columns(self.summaries, self.q)
        in_scope = [r for r in refs if r.dataset in self.scope]
        self.refs = in_scope or refs
        self.many_datasets = len(self.summaries) > 1
        # The language is the question's own words: a Japanese column name in an English
        # question does not make it Japanese.
        words = self.q.normalised
        for name in [s.name for s in mentioned] + [r.column.name for r in refs]:
            words = words.replace(_normalise(name), " ")
        self.ja = is_japanese(words)

    def t(self, english: str, japanese: str) -> str:
        return japanese if self.ja else english

    def answer(self) -> str:
        body = self._body()
        return body + self._unavailable_note()

    def _body(self) -> str:
        if not self.summaries:
            if self.unavailable:
                return self.t(
                    "I could not read the data of this dashboard's datasets, so I cannot answer.",
                    "このダッシュボードのデータセットを読み込めなかったため、お答えできません。",
                )
            return self.t(
                "This dashboard's cards use no datasets, so there is no data to answer from.",
                "このダッシュボードのカードはデータセットを使っていないため、答えられるデータがありません。",
            )
        q = self.q
        aggregates = self._aggregates()
        if self.refs and aggregates:
            return self._lines(self._aggregate_lines(ref, aggregates) for ref in self.refs)
        if self.refs and q.has(TOP):
            return self._lines(self._top_lines(ref) for ref in self.refs)
        if self.refs and q.has(MISSING):
            return self._lines(self._missing_lines(ref) for ref in self.refs)
        if self.refs and (q.has(DISTINCT) or q.has(HOW_MANY)):
            return self._lines(self._distinct_lines(ref) for ref in self.refs)
        if q.has(DATES):
            return self._date_answer()
        if aggregates:
            return self._which_column("number")
        if q.has(TOP):
            texts = self._columns_of_kind("text")
            if len(texts) == 1:
                return self._lines([self._top_lines(texts[0])])
            return self._which_column("text")
        if q.has(ROWS) or (q.has(HOW_MANY) and not self.refs):
            return self._rows_answer()
        if q.has(COLUMNS):
            return self._columns_answer()
        if q.has(OVERVIEW) and not self.refs:
            return f"{self._rows_answer()}\n{self._columns_answer()}"
        if self.refs:
            described = self._lines(self._describe_lines(ref) for ref in self.refs)
            return f"{described}\n{self._configure_hint()}"
        return self._fallback()

    # -- helpers ---------------------------------------------------------------------------

    def _aggregates(self) -> list[str]:
        q = self.q
        wanted = [name for name, p in (("min", MIN), ("max", MAX), ("mean", MEAN)) if q.has(p)]
        if q.has(SUM) and not q.has(ROWS):
            wanted.append("sum")
        if q.has(RANGE) and not q.has(DATES):
            wanted += [a for a in ("min", "max") if a not in wanted]
        order = ("min", "max", "mean", "sum")
        return sorted(wanted, key=order.index)

    def _label(self, ref: _Ref) -> str:
        if self.many_datasets:
            return self.t(
                f"{ref.column.name} ({ref.dataset.name})",
                f"{ref.dataset.name} の {ref.column.name}",
            )
        return ref.column.name

    def _lines(self, groups: Iterable[list[str]]) -> str:
        return "\n".join(line for group in groups for line in group)

    def _columns_of_kind(self, kind: str) -> list[_Ref]:
        return [_Ref(s, c) for s in self.scope for c in s.columns if c.kind == kind]

    def _aggregate_lines(self, ref: _Ref, aggregates: list[str]) -> list[str]:
        column, label = ref.column, self._label(ref)
        if column.kind == "date":
            return self._date_lines(ref)
        if column.kind in ("text", "bool"):
            note = self.t(
                f"{label} is a text column, so it has no minimum, maximum, average or sum.",
                f"{label} はテキストの列なので、最小・最大・平均・合計はありません。",
            )
            return [note, *self._top_lines(ref)]
        if column.kind != "number":
            return [self.t(f"I have no statistics for {label}.", f"{label} の統計はありません。")]
        if column.count == 0:
            return [self.t(f"{label} has no values.", f"{label} には値がありません。")]
        names = {
            "min": ("The minimum of", "の最小値は"),
            "max": ("The maximum of", "の最大値は"),
            "mean": ("The average of", "の平均は"),
            "sum": ("The sum of", "の合計は"),
        }
        values = {"min": column.min, "max": column.max, "mean": column.mean, "sum": column.sum}
        lines = []
        for aggregate in aggregates:
            value = values[aggregate]
            figure = format_number(value) if isinstance(value, int | float) else "n/a"
            english, japanese = names[aggregate]
            lines.append(
                self.t(f"{english} {label} is {figure}.", f"{label} {japanese} {figure} です。")
            )
        if column.null_count:
            lines.append(
                self.t(
                    f"({format_number(column.count)} values; {format_number(column.null_count)}"
                    " missing values are not counted.)",
                    f"（値 {format_number(column.count)} 件。"
                    f"欠損値 {format_number(column.null_count)} 件は含みません。）",
                )
            )
        return lines

    def _top_lines(self, ref: _Ref) -> list[str]:
        column, label = ref.column, self._label(ref)
        if column.kind == "number":
            return [
                self.t(
                    f"{label} is numeric: it ranges from {_fig(column.min)} to {_fig(column.max)},"
                    f" average {_fig(column.mean)}.",
                    f"{label} は数値の列です。範囲は {_fig(column.min)} から {_fig(column.max)}、"
                    f"平均は {_fig(column.mean)} です。",
                )
            ]
        if column.kind == "date":
            return self._date_lines(ref)
        if not column.top_values:
            return [self.t(f"{label} has no values.", f"{label} には値がありません。")]
        if column.top_values[0][1] == 1 and column.top_values_exact:
            n = format_number(column.distinct_count or column.count)
            return [
                self.t(
                    f"No value of {label} occurs more than once ({n} distinct values).",
                    f"{label} の値はすべて異なります（{n} 種類）。",
                )
            ]
        if self.ja:
            items = "、".join(f"{v} ({format_number(c)} 件)" for v, c in column.top_values)
            text = f"{label} の上位の値: {items}。"
        else:
            items = ", ".join(f"{v} ({format_number(c)})" for v, c in column.top_values)
            text = f"The most common values of {label} are: {items}."
        if not column.top_values_exact:
            text += self.t(" (Counts are approximate.)", "（件数は概算です。）")
        return [text]

    def _distinct_lines(self, ref: _Ref) -> list[str]:
        column, label = ref.column, self._label(ref)
        if column.distinct_count is None:
            return self._describe_lines(ref)
        about = "" if column.distinct_exact else self.t("about ", "約 ")
        n = format_number(column.distinct_count)
        return [
            self.t(
                f"{label} has {about}{n} distinct values.",
                f"{label} の異なる値は {about}{n} 種類です。",
            )
        ]

    def _missing_lines(self, ref: _Ref) -> list[str]:
        column, label = ref.column, self._label(ref)
        nulls, rows = format_number(column.null_count), format_number(ref.dataset.row_count)
        return [
            self.t(
                f"{label} has {nulls} missing values out of {rows} rows.",
                f"{label} の欠損値は全 {rows} 件中 {nulls} 件です。",
            )
        ]

    def _date_lines(self, ref: _Ref) -> list[str]:
        column, label = ref.column, self._label(ref)
        if column.kind != "date":
            return self._describe_lines(ref)
        if column.min is None:
            return [self.t(f"{label} has no dates.", f"{label} には日付がありません。")]
        return [
            self.t(
                f"{label} ranges from {column.min} to {column.max}.",
                f"{label} の期間は {column.min} から {column.max} までです。",
            )
        ]

    def _date_answer(self) -> str:
        dates = [r for r in self.refs if r.column.kind == "date"] or self._columns_of_kind("date")
        if not dates:
            return self.t(
                "These datasets have no date columns.",
                "これらのデータセットには日付の列がありません。",
            )
        return self._lines([self._date_lines(ref) for ref in dates])

    def _rows_answer(self) -> str:
        lines = [
            self.t(
                f"{s.name} has {format_number(s.row_count)} rows.",
                f"{s.name} の件数は {format_number(s.row_count)} 件です。",
            )
            for s in self.scope
        ]
        return "\n".join(lines)

    def _columns_answer(self) -> str:
        lines = []
        for s in self.scope:
            separator = self.t(", ", "、")
            listed = separator.join(f"{c.name} ({c.type})" for c in s.columns)
            lines.append(
                self.t(
                    f"{s.name} has {len(s.columns)} columns: {listed}.",
                    f"{s.name} の列（{len(s.columns)} 個）: {listed}。",
                )
            )
        return "\n".join(lines)

    def _describe_lines(self, ref: _Ref) -> list[str]:
        column, label = ref.column, self._label(ref)
        if column.kind == "number" and column.count:
            return [
                self.t(
                    f"{label} ({column.type}): min {_fig(column.min)}, max {_fig(column.max)},"
                    f" average {_fig(column.mean)}, sum {_fig(column.sum)}"
                    f" over {format_number(column.count)} values.",
                    f"{label} ({column.type}): 最小 {_fig(column.min)}、最大 {_fig(column.max)}、"
                    f"平均 {_fig(column.mean)}、合計 {_fig(column.sum)}"
                    f"（値 {format_number(column.count)} 件）。",
                )
            ]
        if column.kind == "date":
            return self._date_lines(ref)
        if column.kind in ("text", "bool"):
            if column.top_values and column.top_values[0][1] == 1:
                return self._top_lines(ref)  # says the count and that all values differ
            return self._distinct_lines(ref) + self._top_lines(ref)
        return [
            self.t(
                f"{label} ({column.type}) has {format_number(column.count)} values.",
                f"{label} ({column.type}) の値は {format_number(column.count)} 件です。",
            )
        ]

    def _which_column(self, kind: str) -> str:
        columns = self._columns_of_kind(kind)
        names = self.t(", ", "、").join(dict.fromkeys(r.column.name for r in columns))
        if kind == "number":
            if not columns:
                return self.t("These datasets have no numeric columns.", "数値の列がありません。")
            return self.t(
                f"Which column do you mean? The numeric columns are: {names}.",
                f"どの列についての質問ですか？数値の列: {names}。",
            )
        if not columns:
            return self.t("These datasets have no text columns.", "テキストの列がありません。")
        return self.t(
            f"Which column do you mean? The text columns are: {names}.",
            f"どの列についての質問ですか？テキストの列: {names}。",
        )

    def _fallback(self) -> str:
        intro = self.t(
            "Without a language model I can only answer simple questions from the dataset"
            " summaries: row counts, the columns and their types, the minimum, maximum, average"
            " or sum of a numeric column, the most common values of a text column, and date"
            " ranges (name the column in your question).",
            "言語モデルが設定されていないため、データの要約から答えられる簡単な質問（件数、列と型、"
            "数値の列の最小・最大・平均・合計、テキストの列の上位の値、日付の期間）にだけお答えできます。"
            "質問には列名を含めてください。",
        )
        separator = "" if self.ja else " "
        return f"{intro}{separator}{self._configure_hint()}"

    def _configure_hint(self) -> str:
        return self.t(
            "To ask free-form questions, configure an LLM provider"
            " (TILEGRAPH_CHAT_PROVIDER=openai or vertex).",
            "自由な質問をするには LLM プロバイダーを設定してください"
            "（TILEGRAPH_CHAT_PROVIDER=openai または vertex）。",
        )

    def _unavailable_note(self) -> str:
        if not self.unavailable:
            return ""
        names = self.t(", ", "、").join(u.name for u in self.unavailable)
        verb = "it is" if len(self.unavailable) == 1 else "they are"
        return self.t(
            f"\nNote: {names} could not be read, so {verb} not included.",
            f"\n注意: {names} は読み込めなかったため含まれていません。",
        )


def _fig(value: int | float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return format_number(value)


def answer_question(
    question: str,
    summaries: Sequence[DatasetSummary],
    unavailable: Sequence[UnavailableDataset] = (),
) -> str:
    """The built-in answer to a question, from the summaries alone."""
    return _Answerer(question, summaries, unavailable).answer()


def chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Word-sized pieces (at most `size` characters for unspaced text) that join to `text`."""
    pieces: list[str] = []
    for word in re.findall(r"\s*\S+\s*|\s+", text):
        pieces += (
            [word[i : i + size] for i in range(0, len(word), size)]
            if len(word) > size * 2
            else [word]
        )
    return pieces


class BuiltinProvider:
    """Answers from the summaries; needs no model, key or network."""

    name = "builtin"

    def __init__(self, answer: Callable[..., str] = answer_question) -> None:
        self._answer = answer

    async def aclose(self) -> None:
        return None

    async def stream(
        self, messages: Sequence[Message], *, context: GroundingContext
    ) -> AsyncIterator[ChatEvent]:
        try:
            text = self._answer(context.question, context.summaries, context.unavailable)
        except Exception:
            log.exception("built-in chat answer failed")
            yield ChatEvent.failed("the built-in assistant could not answer this question")
            return
        for piece in chunks(text):
            yield ChatEvent.token(piece)
            await asyncio.sleep(0)  # let other subscriptions run between chunks
        yield ChatEvent.done()
