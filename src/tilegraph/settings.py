"""One frozen Settings object, read from TILEGRAPH_* environment variables.

Everything configurable lives here so that a process's behaviour is visible in one place
and every component receives its configuration instead of reading the environment itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_JWT_SECRET = "tilegraph-dev-secret-change-me"
ENVIRONMENTS = ("dev", "test", "production")


class SettingsError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"expected a boolean, got {value!r}")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Process configuration. Construct with `Settings.from_env()`; never mutate."""

    env: str = "production"
    # AWS (DynamoDB + S3). endpoint_url is set for the local emulator only.
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    table_prefix: str = "tg_"
    bucket: str = "tilegraph"
    init_store: bool = False
    # Redis: queue, pub/sub, cache, denylist, rate limits.
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "tilegraph:queue"
    # Card results and dataset summaries only: a Redis run with maxmemory and allkeys-lru,
    # so results are evicted and never crowd out the queue, events or the token denylist.
    # Unset: the main Redis (fine for a try-out; production must set it).
    cache_redis_url: str | None = None
    # Auth.
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_issuer: str = "tilegraph"
    jwt_audience: str = "tilegraph-api"
    token_ttl_seconds: int = 24 * 3600
    bcrypt_rounds: int = 12
    # Login throttling (auth/throttle.py): failures allowed per email and per address from
    # clients not known to the account, then refusals for `backoff` seconds, doubling with
    # each further failure up to `backoff_max`; failures are forgotten `window` seconds after
    # the last refusal ends. A device that signed in before is limited by its own failures.
    login_max_failures_per_email: int = 5
    login_max_failures_per_ip: int = 20
    login_failure_window_seconds: int = 900
    login_backoff_seconds: float = 30.0
    login_backoff_max_seconds: float = 900.0
    login_device_ttl_seconds: int = 90 * 24 * 3600
    # How long one identity and access check is shared by every subscriber of this process
    # following the same object (a revoked token or lost access ends streams within it).
    recheck_seconds: float = 1.5
    # A subscription with no events checks its caller again this often (a logout, a disabled
    # account or a revoked share ends an idle stream too).
    idle_recheck_seconds: float = 5.0
    # An open subscription outlives a Redis outage this long (it resumes on the reconnect);
    # past it, it ends with SERVICE_UNAVAILABLE and the client subscribes again.
    subscription_outage_seconds: float = 30.0
    admin_email: str = "admin@tilegraph.local"
    admin_password: str | None = None
    # HTTP.
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ("127.0.0.1",)
    max_body_bytes: int = 1 << 20
    upload_max_bytes: int = 1 << 30
    # The in-browser IDE at /graphql; off unless enabled (`tilegraph dev` enables it).
    graphiql: bool = False
    # /metrics answers only `Authorization: Bearer <this>`; without it, /metrics is 404.
    metrics_token: str | None = None
    introspection: bool | None = None
    field_suggestions: bool | None = None
    # Pre-execution limits (QUERY_TOO_COMPLEX past them).
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 10_000
    max_query_bytes: int = 64 << 10
    max_fields: int = 500
    # What a list without a bound of its own counts as in the cost estimate.
    query_list_default: int = 20
    max_directives: int = 50
    max_cost: int = 10_000
    max_page_size: int = 100
    report_db_requests: bool = False
    # Requests without a valid token, per client address and API process (a token bucket).
    anonymous_requests_per_minute: int = 120
    # Logging.
    log_json: bool | None = None
    log_level: str = "INFO"
    # Where the API's access lines go instead of stderr (`tilegraph dev` sets it under the
    # data dir, so the terminal keeps startup lines, passwords and errors).
    access_log_file: str | None = None
    # An id /healthz reports, so a supervisor knows it reached its own API on a port, not
    # another server (`tilegraph dev` sets a random one per start).
    instance_id: str | None = None
    # Workers and the execution lifecycle.
    worker_poll_delay_seconds: float = 0.01
    worker_max_jobs: int = 16
    # On SIGTERM a worker lets its runs finish this long, then hands the rest back to the queue.
    worker_stop_grace_seconds: float = 20.0
    heartbeat_seconds: float = 5.0
    heartbeat_timeout_seconds: float = 30.0
    sweeper_interval_seconds: int = 10
    requeue_grace_seconds: float = 30.0
    work_dir: str | None = None
    # Datasets.
    ingest_block_bytes: int = 8 << 20
    import_timeout_seconds: int = 3600
    plan_timeout_seconds: int = 600
    # The only buckets users may import from; none by default (every S3 import refused).
    s3_import_buckets: tuple[str, ...] = ()
    preview_max_rows: int = 1000
    # Previews and value lists one request may read (each reads stored data).
    max_data_reads_per_request: int = 50
    # A CSV wider than this fails while its header is read, before any block is parsed.
    max_columns: int = 1000
    column_values_max: int = 500
    # Cards and the sandbox.
    sandbox: str = "bwrap"
    sandbox_slots: int = 0  # 0: one per CPU core
    # How a job's whole process tree is held to its memory limit (executor/memory_cap.py).
    sandbox_memory_cap: str = "auto"
    card_timeout_seconds: float = 10.0
    card_memory_bytes: int = 4 << 30
    card_output_max_bytes: int = 5 << 20
    # A card's table (HTMLResult.table) as an Arrow IPC stream; past it the run fails
    # OUTPUT_TOO_LARGE.
    card_table_max_bytes: int = 16 << 20
    # The address people's browsers reach the API at: card HTML loads plotly.js from it
    # (absolute, so a chart draws inside a sandboxed srcdoc iframe). `tilegraph dev` sets it.
    public_url: str = "http://127.0.0.1:8000"
    card_cache_ttl_seconds: int = 3600
    # HTML up to this size travels in a run's final event; larger HTML is read by its key.
    event_inline_html_bytes: int = 1 << 20
    # Unfinished runs per user: card runs (executeCard, executeDashboard, previews) and manual
    # transform runs. Scheduled runs are not counted.
    max_queued_cards_per_user: int = 20
    # Output bytes one user's runs may hold at once between being taken by a worker and
    # their results being stored: each run reserves its output cap. 0: no budget.
    max_inflight_output_bytes_per_user: int = 32 << 20
    # Card HTML one user's stored execution states may carry inline at once (states live
    # 24 h in the main Redis); past it, states carry the result's key only. 0: no budget.
    max_event_html_bytes_per_user: int = 32 << 20
    # Days the durable S3 copy of a card result is kept (an S3 lifecycle rule).
    card_result_retention_days: int = 30
    # Days a deleted card's, dashboard's or transform's revisions are kept (DynamoDB TTL).
    deleted_retention_days: int = 30
    max_code_bytes: int = 256 << 10
    # Transforms and schedules.
    transform_timeout_seconds: float = 300.0
    transform_memory_bytes: int = 8 << 30
    transform_output_max_bytes: int = 2 << 30
    schedule_min_interval_seconds: int = 60
    schedule_tick_seconds: int = 60
    # Deliveries (outbound/): the SMTP server email goes through (none: EMAIL deliveries fail
    # with an answer saying so), and STARTTLS required on it when smtp_starttls.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "tilegraph@localhost"
    smtp_starttls: bool = False
    # Webhook and Slack hosts exempt from the private/loopback address check (never from the
    # link-local one: cloud metadata stays out of reach). Lowercased, comma-separated.
    delivery_allowed_hosts: frozenset[str] = frozenset()
    # The first retry of a failed send waits this long, each next one twice as long.
    delivery_retry_base_seconds: float = 2.0
    # One attempt to hand a message to SMTP or a webhook, connection included.
    delivery_send_timeout_seconds: float = 10.0
    # A whole delivery run (its cards, then every try): arq ends a job that runs longer.
    delivery_timeout_seconds: int = 900
    # The dashboard chatbot.
    chat_provider: str = "builtin"
    chat_openai_base_url: str = "https://api.openai.com/v1"
    chat_openai_model: str | None = None
    chat_openai_api_key: str | None = None
    chat_openai_auth_style: str = "auto"
    chat_openai_timeout_seconds: float = 120.0
    chat_vertex_project: str | None = None
    chat_vertex_location: str = "us-central1"
    chat_vertex_model: str = "gemini-2.5-flash"
    chat_questions_per_minute: int = 5
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def introspection_enabled(self) -> bool:
        return self.is_dev if self.introspection is None else self.introspection

    @property
    def field_suggestions_enabled(self) -> bool:
        return self.is_dev if self.field_suggestions is None else self.field_suggestions

    @property
    def logs_as_json(self) -> bool:
        return not self.is_dev if self.log_json is None else self.log_json

    @property
    def cache_redis(self) -> str:
        """Where card results are cached: their own Redis, or the main one by default."""
        return self.cache_redis_url or self.redis_url

    def table_name(self, table: str) -> str:
        return f"{self.table_prefix}{table}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def validate(self) -> Settings:
        """Refuse configurations that are unsafe or cannot work."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"TILEGRAPH_ENV must be one of {', '.join(ENVIRONMENTS)}")
        if not self.is_dev and self.jwt_secret == DEFAULT_JWT_SECRET:
            raise SettingsError(
                "TILEGRAPH_JWT_SECRET is the built-in development secret; set a long random "
                "secret (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        if len(self.jwt_secret) < 16:
            raise SettingsError("TILEGRAPH_JWT_SECRET must be at least 16 characters")
        if self.sandbox not in ("bwrap", "process"):
            raise SettingsError("TILEGRAPH_SANDBOX must be bwrap or process")
        if self.sandbox_memory_cap not in ("auto", "cgroup2", "cgroup1", "watchdog", "off"):
            raise SettingsError(
                "TILEGRAPH_SANDBOX_MEMORY_CAP must be auto, cgroup2, cgroup1, watchdog or off"
            )
        if self.metrics_token is not None and len(self.metrics_token) < 16:
            raise SettingsError("TILEGRAPH_METRICS_TOKEN must be at least 16 characters")
        if self.login_backoff_seconds <= 0 or self.login_backoff_max_seconds <= 0:
            raise SettingsError("TILEGRAPH_LOGIN_BACKOFF_SECONDS and _MAX_SECONDS must be > 0")
        if not 4 <= self.bcrypt_rounds <= 16:
            raise SettingsError("TILEGRAPH_BCRYPT_ROUNDS must be between 4 and 16")
        if self.card_table_max_bytes < 1:
            raise SettingsError("TILEGRAPH_CARD_TABLE_MAX_BYTES must be at least 1")
        if not 1 <= self.smtp_port <= 65535:
            raise SettingsError("TILEGRAPH_SMTP_PORT must be between 1 and 65535")
        if "@" not in self.smtp_from or any(c in self.smtp_from for c in "\r\n"):
            raise SettingsError("TILEGRAPH_SMTP_FROM must be an email address")
        if self.delivery_retry_base_seconds <= 0:
            raise SettingsError("TILEGRAPH_DELIVERY_RETRY_BASE_SECONDS must be > 0")
        if self.delivery_send_timeout_seconds <= 0:
            raise SettingsError("TILEGRAPH_DELIVERY_SEND_TIMEOUT_SECONDS must be > 0")
        if self.card_result_retention_days < 1:
            raise SettingsError("TILEGRAPH_CARD_RESULT_RETENTION_DAYS must be at least 1")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read TILEGRAPH_* variables (and the standard AWS_* ones as fallbacks)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            if name == "extra":
                continue
            raw = env.get(f"TILEGRAPH_{name.upper()}")
            if raw is None:
                continue
            values[name] = _convert(name, raw, spec.type)
        fallbacks = {
            "aws_access_key_id": "AWS_ACCESS_KEY_ID",
            "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
            "aws_region": "AWS_DEFAULT_REGION",
        }
        for name, aws_name in fallbacks.items():
            if name not in values and env.get(aws_name):
                values[name] = env[aws_name]
        values["extra"] = {k: v for k, v in env.items() if k.startswith("TILEGRAPH_")}
        return cls(**values).validate()


def _convert(name: str, raw: str, type_name: Any) -> Any:
    type_text = str(type_name)
    try:
        if type_text.startswith("tuple"):
            return _csv(raw)
        if type_text.startswith("frozenset"):
            return frozenset(part.lower().rstrip(".") for part in _csv(raw))
        if type_text.startswith("bool"):
            return None if raw.strip() == "" and "None" in type_text else _bool(raw)
        if type_text.startswith("int"):
            return int(raw)
        if type_text.startswith("float"):
            return float(raw)
    except (ValueError, SettingsError) as exc:
        raise SettingsError(f"TILEGRAPH_{name.upper()}: {exc}") from exc
    if "None" in type_text and raw == "":
        return None
    return raw
