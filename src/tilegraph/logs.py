"""Structured logs: JSON in production, readable in dev, every line with its request id."""

from __future__ import annotations

import logging
import sys

import structlog

from tilegraph.settings import Settings

# The logger the request middleware (http/middleware.py) writes its access lines to.
ACCESS_LOGGER = "tilegraph.access"


def _is_connection_line(record: logging.LogRecord) -> bool:
    """uvicorn's and websockets' per-connection lines (a WebSocket accepted, opened,
    closed): access lines too, so they go where the access log goes."""
    template = str(record.msg)
    return record.name == "uvicorn.error" and (
        template.startswith('%s - "WebSocket ')
        or template in ("connection open", "connection closed")
    )


def _route_access_lines(path: str, terminal: logging.Handler, formatter: logging.Formatter) -> None:
    """Requests and connections to `path`; the terminal keeps everything else."""
    to_file = logging.FileHandler(path, encoding="utf-8", delay=True)
    to_file.setFormatter(formatter)
    to_file.addFilter(lambda r: r.name == ACCESS_LOGGER or _is_connection_line(r))
    access = logging.getLogger(ACCESS_LOGGER)
    access.handlers[:] = [to_file]
    access.propagate = False
    logging.getLogger("uvicorn.error").handlers[:] = [to_file]
    terminal.addFilter(lambda r: not _is_connection_line(r))


def _file_formatter(
    shared: list[structlog.types.Processor],
) -> structlog.stdlib.ProcessorFormatter:
    """JSON lines: a file is read by tools, not by a terminal."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def configure_logging(settings: Settings) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.logs_as_json
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    for noisy in ("botocore", "aiobotocore", "urllib3", "asyncio", "arq.worker"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    logging.getLogger(ACCESS_LOGGER).handlers.clear()
    logging.getLogger(ACCESS_LOGGER).propagate = True
    logging.getLogger("uvicorn.error").handlers.clear()
    if settings.access_log_file:
        _route_access_lines(settings.access_log_file, handler, _file_formatter(shared))
    # Our middleware writes the access line (with the request id); uvicorn's would not.
    logging.getLogger("uvicorn.access").disabled = True
