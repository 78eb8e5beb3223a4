"""`tilegraph dev`: the whole product on one machine, with data kept in the data dir.

Checks every port it needs before starting anything, starts the AWS emulator (state
persisted under the data dir) and its own Redis (unless TILEGRAPH_REDIS_URL names one),
creates tables, the bucket and the first admin, then runs the API and a worker as child
processes, and says "running" once its own API answers (by the instance id it gave it).
A child that exits is restarted after a backoff (with a message), so one crash never
stops the product. Ctrl-C stops every child in order (API, worker, emulator, Redis)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tilegraph.local.processes import Supervisor, free_ports, port_free, port_open, wait_for_port
from tilegraph.settings import Settings

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEV_CACHE_MAXMEMORY = "256mb"
# The emulator's bucket that users may import CSVs from (importDatasetFromS3).
IMPORTS_BUCKET = "imports"


class DevError(RuntimeError):
    """A reason `tilegraph dev` cannot start, worded for the person running it."""


@dataclass
class DevOptions:
    host: str
    port: int
    data_dir: Path
    demo: bool


@dataclass(frozen=True)
class DevPorts:
    """The local ports this start listens on, chosen (and checked) before anything starts."""

    aws: int
    redis: int
    cache_redis: int


def _browser_url(host: str, port: int) -> str:
    """What a browser on this machine types for a server bound to `host`."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _without_password(url: str) -> str:
    """A URL fit for the terminal: its password, if any, masked."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def _read_or_create_secret(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    path.write_text(secret)
    path.chmod(0o600)
    return secret


def _spawn(
    args: list[str], env: dict[str, str], log_path: Path | None = None
) -> subprocess.Popen[bytes]:
    """Children get their own process group, so Ctrl-C reaches only us and we stop them
    in order."""
    stdout = log_path.open("ab") if log_path else None
    return subprocess.Popen(
        args,
        env=env,
        start_new_session=True,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout else None,
    )


def _redis_url(data_dir: Path, children: Supervisor, port: int) -> tuple[str, str]:
    """The main Redis and where it comes from: TILEGRAPH_REDIS_URL when set, else a
    redis-server of our own under the data dir. Never a Redis that merely answers on the
    default port: its DB 0 may well be someone else's."""
    url = os.environ.get("TILEGRAPH_REDIS_URL")
    if url:
        return url, "from TILEGRAPH_REDIS_URL"
    default = urlparse(DEFAULT_REDIS_URL)
    someone_elses = port_open(default.hostname or "127.0.0.1", default.port or 6379)
    if shutil.which("redis-server") is None:
        found = f" (something answers at {DEFAULT_REDIS_URL}: set it to use that one)"
        raise DevError(
            "redis-server is not installed. Install it (Debian/Ubuntu: `sudo apt-get "
            "install redis-server`) or set TILEGRAPH_REDIS_URL to a Redis of your own"
            + (found if someone_elses else "")
            + "."
        )
    # The queue, events and the token denylist: kept on disk across restarts.
    redis_dir = data_dir / "redis"
    url = _start_redis("redis", redis_dir, children, port, "--appendonly", "yes", "--save", "60 1")
    origin = f"its own, data in {redis_dir}"
    if someone_elses:
        origin += f"; the Redis at {DEFAULT_REDIS_URL} is not used (set TILEGRAPH_REDIS_URL)"
    return url, origin


def _cache_redis_url(data_dir: Path, children: Supervisor, main_url: str, port: int) -> str:
    """A Redis of its own for card results, bounded by maxmemory and evicting the least
    recently used; the main one where redis-server is not installed here."""
    url = os.environ.get("TILEGRAPH_CACHE_REDIS_URL")
    if url:
        return url
    if shutil.which("redis-server") is None:
        return main_url
    return _start_redis(
        "cache redis",
        data_dir / "redis-cache",
        children,
        port,
        *("--appendonly", "no", "--save", ""),
        *("--maxmemory", DEV_CACHE_MAXMEMORY, "--maxmemory-policy", "allkeys-lru"),
    )


def _start_redis(name: str, redis_dir: Path, children: Supervisor, port: int, *options: str) -> str:
    server = shutil.which("redis-server")
    assert server is not None
    redis_dir.mkdir(parents=True, exist_ok=True)
    args = [
        server,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(redis_dir),
        *options,
        "--logfile",
        str(redis_dir / "redis.log"),
    ]
    process = children.add(name, lambda: _spawn(args, dict(os.environ)))
    _wait_for(name, "127.0.0.1", port, timeout=15, process=process)
    return f"redis://127.0.0.1:{port}/0"


def _wait_for(
    name: str, host: str, port: int, *, timeout: float, process: subprocess.Popen[bytes]
) -> None:
    try:
        wait_for_port(host, port, timeout=timeout, process=process)
    except (RuntimeError, TimeoutError) as exc:
        raise DevError(f"the {name} did not start on port {port}: {exc}") from exc


def _choose_ports(options: DevOptions) -> DevPorts:
    """Fails at once, naming the port, when the API's port is taken; the others are free
    ones picked together (so none is picked twice)."""
    if not port_free(options.host, options.port):
        raise DevError(
            f"port {options.port} on {options.host} is already in use (another Tilegraph, or "
            "another server). Stop it, or choose another port: tilegraph dev --port 9000 "
            '(make run ARGS="--port 9000").'
        )
    aws, redis, cache_redis = free_ports(3)
    return DevPorts(aws=aws, redis=redis, cache_redis=cache_redis)


def wait_for_api(
    url: str, instance_id: str, process: subprocess.Popen[bytes], timeout: float
) -> None:
    """Until /healthz answers with our instance id: an open port alone could be another
    server that took the port after we checked it."""
    deadline = time.monotonic() + timeout
    stranger = None
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DevError(
                    f"the API exited with {process.returncode} before answering at {url} "
                    "(see its messages above)"
                )
            try:
                response = client.get(f"{url}/healthz")
                answered = response.json().get("instance")
            except (httpx.HTTPError, ValueError, AttributeError):
                answered = None
            else:
                if answered == instance_id:
                    return
                stranger = response.status_code
            time.sleep(0.1)
    if stranger is not None:
        raise DevError(f"another server answers at {url} (HTTP {stranger}), not this API")
    raise DevError(f"the API did not answer at {url} within {timeout:.0f}s")


async def _prepare_store(settings: Settings) -> tuple[str, str | None, bool]:
    """Tables, buckets (ours and the import buckets) and the first admin. Returns (email,
    generated password, created)."""
    from tilegraph.services.registry import Services
    from tilegraph.store.tables import ensure_bucket

    services = await Services.open(settings.with_overrides(init_store=True))
    try:
        for bucket in settings.s3_import_buckets:
            await ensure_bucket(services.aws.s3, settings, bucket)
        email = settings.admin_email
        password = settings.admin_password
        generated = None
        if not password:
            if await services.repos.users.get_by_email(email) is not None:
                return email, None, False
            generated = password = secrets.token_urlsafe(12) + "-Aa1"
        _, created = await services.users.ensure_admin(email, "Administrator", password)
        return email, generated if created else None, created
    finally:
        await services.close()


def _first_start_demo(
    data_dir: Path, server: str, admin_email: str, admin_password: str | None
) -> None:
    """Once per data dir: a working dashboard instead of an empty screen. Every start says
    where it is (the marker keeps the demo user, the dashboard's id and name)."""
    from tilegraph.local.demo import DemoError, dashboard_directions, run_demo

    marker = data_dir / "demo-created"
    if marker.exists():
        _, dashboard_id, dashboard_name = [*marker.read_text().splitlines(), "", ""][:3]
        if dashboard_id:
            print(
                dashboard_directions(dashboard_id, dashboard_name, server, admin_email), flush=True
            )
        return
    if not admin_password:
        print("Demo workspace: run `tilegraph demo` to create it.", flush=True)
        return
    try:
        result = run_demo(server, admin_email, admin_password)
    except DemoError as exc:
        print(f"Demo workspace not created: {exc}", file=sys.stderr, flush=True)
        return
    marker.write_text(
        "\n".join([result.email, result.dashboard_id or "", result.dashboard_name]) + "\n"
    )
    if result.created:
        print(f"Demo: {result.email} / password: {result.password}  (shown once)", flush=True)
    if result.dashboard_id:
        print(
            dashboard_directions(result.dashboard_id, result.dashboard_name, server, admin_email),
            flush=True,
        )


def run_dev(options: DevOptions) -> int:
    data_dir = options.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "logs").mkdir(exist_ok=True)
    children = Supervisor()
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        ports = _choose_ports(options)
        aws_port = ports.aws
        emulator_args = [
            sys.executable,
            "-m",
            "tilegraph.local.emulator",
            "--port",
            str(aws_port),
            "--state-file",
            str(data_dir / "aws-state.pickle"),
        ]
        emulator = children.add(
            "AWS emulator",
            lambda: _spawn(emulator_args, dict(os.environ), data_dir / "logs" / "aws-emulator.log"),
        )
        _wait_for("AWS emulator", "127.0.0.1", aws_port, timeout=60, process=emulator)
        redis_url, redis_origin = _redis_url(data_dir, children, ports.redis)
        cache_redis_url = _cache_redis_url(data_dir, children, redis_url, ports.cache_redis)
        server = _browser_url(options.host, options.port)
        instance_id = secrets.token_hex(16)
        env = {
            **os.environ,
            "TILEGRAPH_ENV": "dev",
            "TILEGRAPH_AWS_ENDPOINT_URL": f"http://127.0.0.1:{aws_port}",
            "TILEGRAPH_AWS_ACCESS_KEY_ID": "local",
            "TILEGRAPH_AWS_SECRET_ACCESS_KEY": "local",
            "TILEGRAPH_REDIS_URL": redis_url,
            "TILEGRAPH_CACHE_REDIS_URL": cache_redis_url,
            "TILEGRAPH_JWT_SECRET": os.environ.get("TILEGRAPH_JWT_SECRET")
            or _read_or_create_secret(data_dir / "jwt-secret"),
            "TILEGRAPH_DATA_DIR": str(data_dir),
            # Closed by default in production; on here, on one's own machine.
            "TILEGRAPH_GRAPHIQL": os.environ.get("TILEGRAPH_GRAPHIQL", "1"),
            "TILEGRAPH_S3_IMPORT_BUCKETS": os.environ.get(
                "TILEGRAPH_S3_IMPORT_BUCKETS", IMPORTS_BUCKET
            ),
            # Card HTML loads plotly.js from here: the address this command serves at.
            "TILEGRAPH_PUBLIC_URL": os.environ.get("TILEGRAPH_PUBLIC_URL", server),
            # The terminal keeps startup lines, passwords and errors; requests go here.
            "TILEGRAPH_ACCESS_LOG_FILE": os.environ.get(
                "TILEGRAPH_ACCESS_LOG_FILE", str(data_dir / "logs" / "access.log")
            ),
            "TILEGRAPH_INSTANCE_ID": instance_id,
        }
        settings = Settings.from_env(env)
        email, generated, created = asyncio.run(_prepare_store(settings))
        cli = [sys.executable, "-m", "tilegraph.cli"]
        serve = [*cli, "serve", "--host", options.host, "--port", str(options.port)]
        api = children.add("API", lambda: _spawn(serve, env))
        # Time to finish its runs and hand the rest back (TILEGRAPH_WORKER_STOP_GRACE_SECONDS).
        children.add(
            "worker",
            lambda: _spawn([*cli, "worker"], env),
            stop_timeout=settings.worker_stop_grace_seconds + 10,
        )
        wait_for_api(server, instance_id, api, timeout=60)
        ide = "GraphiQL" if settings.graphiql else "GraphQL"
        print(f"\nTilegraph is running. Dashboards: {server}/  {ide}: {server}/graphql", flush=True)
        print(f"Redis: {_without_password(redis_url)} ({redis_origin})", flush=True)
        print(f"Logs: {data_dir / 'logs'} (requests in access.log)", flush=True)
        if settings.s3_import_buckets:
            print(
                f"S3 imports from: {', '.join(settings.s3_import_buckets)} "
                f"(emulator at http://127.0.0.1:{aws_port}, keys local/local)",
                flush=True,
            )
        if generated:
            print(f"Admin: {email} / password: {generated}  (shown once; change it)", flush=True)
        elif created:
            print(f"Admin: {email} (password from TILEGRAPH_ADMIN_PASSWORD)", flush=True)
        else:
            print(f"Admin: {email}", flush=True)
        if options.demo:
            _first_start_demo(
                data_dir,
                server,
                email,
                generated or settings.admin_password,
            )
        print(f"Data: {data_dir}. Press Ctrl-C to stop.", flush=True)
        while not stopping:
            children.check()
            time.sleep(0.2)
        return 0
    except DevError as exc:
        print(f"tilegraph dev: {exc}", file=sys.stderr)
        return 1
    finally:
        children.stop_all()
