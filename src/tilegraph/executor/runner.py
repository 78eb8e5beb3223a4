"""Runs one piece of user code inside the sandboxed child: compile, find the entry point, call it,
validate what came back, and turn every failure into an error code with a readable message.

Imported by the zygote (stdlib + pandas/numpy/pyarrow/plotly only, no tilegraph package), so the
error codes are the plain string values of ``ExecutionErrorCode``.
"""

from __future__ import annotations

import builtins
import contextlib
import linecache
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import CodeType, TracebackType
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import pyarrow as pa

CARD_FILENAME = "<card>"
TRANSFORM_FILENAME = "<transform>"
MAX_MESSAGE_CHARS = 8000

SYNTAX_ERROR = "SYNTAX_ERROR"
MISSING_ENTRY_POINT = "MISSING_ENTRY_POINT"
FORBIDDEN_OPERATION = "FORBIDDEN_OPERATION"
RUNTIME_ERROR = "RUNTIME_ERROR"
BAD_RESULT = "BAD_RESULT"
TIMEOUT = "TIMEOUT"
MEMORY_LIMIT = "MEMORY_LIMIT"
OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"

# Modules whose only use in a card or transform would be to leave the sandbox's purpose:
# processes, sockets, raw memory and our own internals. The import guard gives a clean error;
# the OS sandbox is what actually stops them if the guard is bypassed.
FORBIDDEN_MODULES = frozenset(
    {
        "ctypes",
        "_ctypes",
        "cffi",
        "_cffi_backend",
        "subprocess",
        "_posixsubprocess",
        "socket",
        "_socket",
        "ssl",
        "_ssl",
        "multiprocessing",
        "_multiprocessing",
        "_posixshmem",
        "pty",
        "tty",
        "termios",
        "pexpect",
        "tgexec",
        "tilegraph",
    }
)


@dataclass
class HTMLResult:
    """What a card's ``render`` may return instead of a bare HTML string."""

    html: str
    used_columns: list[str] = field(default_factory=list)
    filter_applicable: list[str] = field(default_factory=list)
    # Named numbers ({"total": 42.5}) and a DataFrame, stored with the result.
    metrics: dict[str, int | float] | None = None
    table: Any = None


@dataclass(frozen=True)
class CardResult:
    html: str
    used_columns: list[str]
    filter_applicable: list[str]
    metrics: dict[str, int | float] | None = None
    table: pa.Table | None = None


class JobError(Exception):
    """A failure to report to the user: error code, message and line in their code."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = _clip(message)
        self.line = line

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line}


class ForbiddenImport(ImportError):
    """Raised by the import guard; an ImportError so ``try: import x`` fallbacks still work."""


class CpuTimeExceeded(BaseException):
    """Raised from the SIGXCPU handler; a BaseException so ``except Exception`` can't eat it."""


def _clip(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[: MAX_MESSAGE_CHARS - 20] + "\n… (message cut)"


def is_forbidden(name: str) -> bool:
    return name.partition(".")[0] in FORBIDDEN_MODULES


class _ImportBlocker:
    """``sys.meta_path`` finder that refuses to load forbidden modules for anyone, so
    ``importlib.import_module`` and friends fail as cleanly as ``import``."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> None:
        if is_forbidden(fullname):
            raise ForbiddenImport(f"importing '{fullname}' is not allowed", name=fullname)
        return None


def loaded_forbidden_modules() -> list[str]:
    """Names to forget in the child; computed once in the zygote so the child does not walk
    (and copy-on-write fault) the whole of ``sys.modules``."""
    return [name for name in sys.modules if is_forbidden(name)]


def install_import_guard(loaded: list[str] | None = None) -> None:
    """Forget already-imported forbidden modules and refuse to load them again.

    Only called in the one-shot child before user code; libraries keep working with the
    module objects they already hold.
    """
    for name in loaded if loaded is not None else loaded_forbidden_modules():
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, _ImportBlocker())


def _guarded_builtins() -> dict[str, Any]:
    real_import = builtins.__import__

    def guarded_import(
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: tuple[str, ...] | list[str] = (),
        level: int = 0,
    ) -> Any:
        if level == 0 and is_forbidden(name):
            raise ForbiddenImport(f"importing '{name}' is not allowed", name=name)
        return real_import(name, globals, locals, fromlist, level)

    scope = dict(builtins.__dict__)
    scope["__import__"] = guarded_import
    return scope


def compile_user_code(code: str, filename: str) -> CodeType:
    """Compile, mapping syntax problems to SYNTAX_ERROR with the 1-based line."""
    try:
        compiled = compile(code, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno
        text = (exc.text or "").rstrip("\n")
        where = f" (line {line})" if line else ""
        detail = f"\n    {text.strip()}" if text.strip() else ""
        raise JobError(
            SYNTAX_ERROR, f"{type(exc).__name__}: {exc.msg}{where}{detail}", line
        ) from None
    except (ValueError, TypeError) as exc:  # e.g. NUL bytes in the source
        raise JobError(SYNTAX_ERROR, f"SyntaxError: {exc}") from None
    lines = code.splitlines(keepends=True)
    linecache.cache[filename] = (len(code), None, lines, filename)
    return compiled


def _exception_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _user_frames(tb: TracebackType | None, filename: str) -> traceback.StackSummary:
    frames = [f for f in traceback.extract_tb(tb) if f.filename == filename]
    return traceback.StackSummary.from_list(frames)


def _safe_str(exc: BaseException) -> str:
    try:
        return _clip(str(exc))
    except Exception:
        return "<exception text unavailable>"


def describe_exception(exc: BaseException, filename: str, limits: Mapping[str, Any]) -> JobError:
    """Map an exception from user code to a JobError with only the user's own frames."""
    if isinstance(exc, JobError):
        return exc
    frames = _user_frames(exc.__traceback__, filename)
    line = frames[-1].lineno if frames else None
    trace = "".join(frames.format()).rstrip()
    suffix = f"\n{trace}" if trace else ""
    chain = _exception_chain(exc)
    forbidden = next((e for e in chain if isinstance(e, ForbiddenImport)), None)
    if forbidden is not None:
        what = "card" if filename == CARD_FILENAME else "transform"
        name = forbidden.name or "this module"
        return JobError(
            FORBIDDEN_OPERATION,
            f"Importing '{name}' is not allowed in {what} code: user code may not start "
            f"processes, open network connections or call native code.{suffix}",
            line,
        )
    if isinstance(exc, CpuTimeExceeded):
        return JobError(
            TIMEOUT, f"CPU time limit of {limits.get('cpu_seconds')} s exceeded.{suffix}", line
        )
    if any(isinstance(e, MemoryError) for e in chain):
        mib = int(limits.get("memory_bytes", 0)) // (1024 * 1024)
        return JobError(
            MEMORY_LIMIT,
            f"Out of memory: the code tried to use more than its {mib} MiB limit "
            f"({type(exc).__name__}: {_safe_str(exc)}).{suffix}",
            line,
        )
    return JobError(RUNTIME_ERROR, f"{type(exc).__name__}: {_safe_str(exc)}{suffix}", line)


def _base_globals(filename: str) -> dict[str, Any]:
    return {
        "__name__": "__card__" if filename == CARD_FILENAME else "__transform__",
        "__file__": filename,
        "__builtins__": _guarded_builtins(),
        "pd": pd,
        "np": np,
        "px": px,
        "go": go,
        "HTMLResult": HTMLResult,
    }


def _call_user(fn: Callable[[], Any], filename: str, limits: Mapping[str, Any]) -> Any:
    try:
        return fn()
    except JobError:
        raise
    except BaseException as exc:  # user code may raise anything, SystemExit included
        raise describe_exception(exc, filename, limits) from None


def _str_list(value: object, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise JobError(BAD_RESULT, f"{what} must be a list of column names")
    if not all(isinstance(item, str) for item in value):
        raise JobError(BAD_RESULT, f"{what} must contain only strings")
    return list(value)


# The same rules as tilegraph.domain.card_outputs (which the worker applies again).
MAX_METRICS = 100
MAX_METRIC_NAME_CHARS = 100
MAX_METRIC_INT = 2**63 - 1
MAX_TABLE_COLUMNS = 256
MAX_TABLE_COLUMN_NAME_BYTES = 4096


def _metric_value(name: str, number: object) -> int | float:
    if isinstance(number, np.generic) and not isinstance(number, np.bool_):
        number = number.item()  # numpy scalars (what .sum() gives) count as numbers
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise JobError(
            BAD_RESULT,
            f"Metric {name!r} must be a number (int or float), not {type(number).__name__}",
        )
    if isinstance(number, int):
        if abs(number) > MAX_METRIC_INT:
            raise JobError(BAD_RESULT, f"Metric {name!r} is too large for an integer (64 bits)")
        return int(number)
    if not math.isfinite(number):
        raise JobError(BAD_RESULT, f"Metric {name!r} must be a finite number, not {number!r}")
    magnitude = abs(number)
    if magnitude > 1e125 or 0 < magnitude < 1e-130:
        raise JobError(
            BAD_RESULT,
            f"Metric {name!r} is out of range: {number!r} (magnitudes from 1e-130 to 1e125, or 0)",
        )
    return float(number)


def _metrics(value: object, what: str) -> dict[str, int | float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise JobError(
            BAD_RESULT, f"{what} must be a dict of name → number, not {type(value).__name__}"
        )
    if len(value) > MAX_METRICS:
        raise JobError(
            BAD_RESULT, f"{what} has {len(value)} entries; at most {MAX_METRICS} are allowed"
        )
    checked: dict[str, int | float] = {}
    for name, number in value.items():
        if not isinstance(name, str) or not name or len(name) > MAX_METRIC_NAME_CHARS:
            raise JobError(
                BAD_RESULT,
                f"Metric name {name!r} must be a non-empty string of at most "
                f"{MAX_METRIC_NAME_CHARS} characters",
            )
        checked[name] = _metric_value(name, number)
    return checked


def _card_table(value: object, what: str) -> pa.Table | None:
    if value is None:
        return None
    table = table_from_frame(value, what)
    total = sum(len(name.encode()) for name in table.column_names)
    if table.num_columns > MAX_TABLE_COLUMNS or total > MAX_TABLE_COLUMN_NAME_BYTES:
        raise JobError(
            BAD_RESULT,
            f"{what} has {table.num_columns} columns whose names take {total} bytes; a card's "
            f"table may have at most {MAX_TABLE_COLUMNS} columns whose names take at most "
            f"{MAX_TABLE_COLUMN_NAME_BYTES} bytes together",
        )
    return table


def _checked_result(fields: Mapping[str, object], shape: str) -> CardResult:
    """``shape`` names the fields the way the card wrote them, e.g. ``HTMLResult.{}``."""
    html = fields.get("html")
    if not isinstance(html, str):
        raise JobError(
            BAD_RESULT, f"{shape.format('html')} must be a string, not {type(html).__name__}"
        )
    return CardResult(
        html,
        _str_list(fields.get("used_columns"), shape.format("used_columns")),
        _str_list(fields.get("filter_applicable"), shape.format("filter_applicable")),
        _metrics(fields.get("metrics"), shape.format("metrics")),
        _card_table(fields.get("table"), shape.format("table")),
    )


_RESULT_FIELDS = ("html", "used_columns", "filter_applicable", "metrics", "table")


def card_result(value: object) -> CardResult:
    """Accept a string, an HTMLResult-like object, or a dict with an ``html`` key (the older
    style of the system Tilegraph replaces); anything else is BAD_RESULT."""
    if isinstance(value, str):
        return CardResult(value, [], [])
    if isinstance(value, dict) and "html" in value:
        return _checked_result(value, "render()['{}']")
    try:
        fields = {name: getattr(value, name, None) for name in _RESULT_FIELDS}
    except Exception:
        fields = {}
    if fields.get("html") is None or isinstance(value, bytes | bytearray):
        raise JobError(
            BAD_RESULT,
            "render() must return an HTML string or HTMLResult(html=..., used_columns=[...], "
            f"filter_applicable=[...], metrics={{...}}, table=<DataFrame>), not "
            f"{type(value).__name__}",
        )
    return _checked_result(fields, "HTMLResult.{}")


def run_card(
    code: str,
    dataset: pd.DataFrame,
    filters: dict[str, Any],
    params: dict[str, Any],
    limits: Mapping[str, Any],
) -> CardResult:
    """Execute card code and call ``render(dataset, filters, params)``; ``filters`` maps each
    filtered column to its values or ``{"start": ..., "end": ...}``."""
    compiled = compile_user_code(code, CARD_FILENAME)
    scope = _base_globals(CARD_FILENAME)
    _call_user(lambda: exec(compiled, scope), CARD_FILENAME, limits)
    render = scope.get("render")
    if not callable(render):
        raise JobError(
            MISSING_ENTRY_POINT,
            "Card code must define a function `render(dataset, filters, params)`.",
        )
    value = _call_user(lambda: render(dataset, filters, params), CARD_FILENAME, limits)
    return card_result(value)


def run_transform(
    code: str,
    inputs: dict[str, pd.DataFrame],
    params: dict[str, Any],
    limits: Mapping[str, Any],
) -> pa.Table:
    """Execute transform code: call ``transform(inputs, params)`` or read ``result``."""
    compiled = compile_user_code(code, TRANSFORM_FILENAME)
    scope = _base_globals(TRANSFORM_FILENAME)
    scope.update(inputs=inputs, params=params)
    for index, frame in enumerate(inputs.values()):
        scope[f"df_{index}"] = frame
    _call_user(lambda: exec(compiled, scope), TRANSFORM_FILENAME, limits)
    transform = scope.get("transform")
    if callable(transform):
        value = _call_user(lambda: transform(inputs, params), TRANSFORM_FILENAME, limits)
    elif "result" in scope:
        value = scope["result"]
    else:
        raise JobError(
            MISSING_ENTRY_POINT,
            "Transform code must define `def transform(inputs, params)` or assign a DataFrame "
            "to `result`.",
        )
    return table_from_frame(value)


_ALLOWED_TYPES = "integers, floats, booleans, dates, datetimes and strings"


def _normalise(
    array: pa.Array | pa.ChunkedArray, name: str, card_field: str | None
) -> pa.Array | pa.ChunkedArray:
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if pa.types.is_null(kind):
        return array.cast(pa.string())
    if pa.types.is_float16(kind):
        return array.cast(pa.float32())
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(kind):
        return array.cast(pa.large_string())
    if (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    ):
        return array
    if card_field:
        message = (
            f"Column '{name}' of {card_field} has unsupported type {kind}; a card's table may "
            f"only hold {_ALLOWED_TYPES}."
        )
    else:
        message = (
            f"Column '{name}' has unsupported type {kind}; a transform may only produce "
            f"{_ALLOWED_TYPES}."
        )
    raise JobError(BAD_RESULT, message)


def table_from_frame(value: object, card_field: str | None = None) -> pa.Table:
    """Convert a transform's DataFrame (or, with ``card_field`` naming where the card put it,
    a card's table) column by column, naming the first bad column."""
    if not isinstance(value, pd.DataFrame):
        hint = " (use .to_frame() on a Series)" if isinstance(value, pd.Series) else ""
        what = f"{card_field} must be" if card_field else "A transform must produce"
        raise JobError(BAD_RESULT, f"{what} a pandas DataFrame, not {type(value).__name__}{hint}")
    names = [str(column) for column in value.columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise JobError(BAD_RESULT, f"Column name '{name}' appears more than once")
        seen.add(name)
    arrays: list[pa.Array | pa.ChunkedArray] = []
    for index, name in enumerate(names):
        series = value.iloc[:, index]
        try:
            array = pa.array(series, from_pandas=True)
        except MemoryError:
            raise
        except Exception as exc:
            raise JobError(
                BAD_RESULT,
                f"Column '{name}' cannot be stored ({type(exc).__name__}: {_safe_str(exc)}); "
                f"a column must hold only one kind of value: {_ALLOWED_TYPES}.",
            ) from None
        arrays.append(_normalise(array, name, card_field))
    if not arrays:
        return pa.table({})
    return pa.Table.from_arrays(arrays, names=names)


def rehearse() -> None:
    """Walk the per-job path once in the idle child, so its copy-on-write page faults (a few
    hundred, ~6 us each here) happen before the job arrives instead of on the hot path."""
    frame = pd.DataFrame({"a": [1, 2]})
    run_card("def render(dataset, filters, params):\n    return 'x'\n", frame, {}, {}, {})
    run_transform("result = df_0\n", {"x": frame}, {}, {})
    with contextlib.suppress(JobError):
        run_card("def render(dataset, filters, params):\n    return 1 / 0\n", frame, {}, {}, {})
    linecache.cache.pop(CARD_FILENAME, None)
    linecache.cache.pop(TRANSFORM_FILENAME, None)


def warm_up() -> None:
    """Run the expensive first-use paths once in the zygote so every child inherits them."""
    frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0], "c": ["x", "y"]})
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table.to_pandas(use_threads=False)
    figure = px.bar(frame, x="a", y="b")
    figure.to_html()
    go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).to_html(include_plotlyjs=False)
    table_from_frame(frame)
    compile_user_code("x = 1\n", "<warm-up>")
