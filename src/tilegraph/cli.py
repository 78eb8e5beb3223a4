"""`tilegraph dev | serve | worker | schema | create-admin | import | export | apply |
aws-emulator`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path

from tilegraph.settings import Settings, SettingsError


def _settings() -> Settings:
    """The settings, with logs going to stderr (stdout is the command's own output)."""
    from tilegraph.logs import configure_logging

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"tilegraph: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(settings)
    return settings


def cmd_dev(args: argparse.Namespace) -> int:
    from tilegraph.local.dev import DevOptions, run_dev

    try:
        import moto  # noqa: F401
    except ImportError:
        print(
            "tilegraph dev needs the local AWS emulator: pip install 'tilegraph[local]'",
            file=sys.stderr,
        )
        return 2
    return run_dev(DevOptions(args.host, args.port, Path(args.data_dir), demo=not args.no_demo))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tilegraph.app import server_config
    from tilegraph.chat.factory import ChatConfigError, check_settings

    settings = _settings()
    from tilegraph.services.chat import chat_settings

    try:  # refuse bad chat settings here, with the variable named, not deep in start-up
        check_settings(chat_settings(settings))
    except ChatConfigError as exc:
        print(f"tilegraph: TILEGRAPH_CHAT_*: {exc}", file=sys.stderr)
        return 2
    server = uvicorn.Server(server_config(settings, args.host, args.port))
    server.run()
    return 0 if server.started else 3


def cmd_worker(args: argparse.Namespace) -> int:
    from tilegraph.jobs.worker import build_worker

    settings = _settings()
    if args.check:
        from arq.worker import async_check_health

        from tilegraph.services.registry import redis_settings

        return asyncio.run(
            async_check_health(redis_settings(settings), queue_name=settings.queue_name)
        )
    worker = build_worker(settings, burst=args.burst)
    worker.run()
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from tilegraph.schema.build import print_sdl

    sys.stdout.write(print_sdl())
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    from tilegraph.domain.errors import TilegraphError
    from tilegraph.services.registry import Services

    settings = _settings()
    password = args.password or os.environ.get("TILEGRAPH_ADMIN_PASSWORD")
    if not password:
        password = getpass.getpass("Password for the new admin: ")

    async def create() -> bool:
        services = await Services.open(settings)
        try:
            _, created = await services.users.ensure_admin(args.email, args.name, password)
            return created
        finally:
            await services.close()

    try:
        created = asyncio.run(create())
    except TilegraphError as exc:
        print(f"tilegraph create-admin: {exc.message}", file=sys.stderr)
        return 1
    print(f"{'Created' if created else 'Already exists'}: {args.email}")
    return 0


def cmd_schedule_tick(args: argparse.Namespace) -> int:
    from tilegraph.domain.clock import from_iso
    from tilegraph.jobs.schedules import schedule_tick
    from tilegraph.services.registry import Services

    settings = _settings()
    at = from_iso(args.at) if args.at else None

    async def tick() -> int:
        services = await Services.open(settings)
        try:
            return len(await schedule_tick(services, at))
        finally:
            await services.close()

    print(f"queued {asyncio.run(tick())} scheduled run(s)")
    return 0


def _token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("TILEGRAPH_TOKEN")


def cmd_import(args: argparse.Namespace) -> int:
    from tilegraph.local.importer import run_import

    return run_import(Path(args.file), args.name, args.server, _token(args), args.email)


def cmd_export(args: argparse.Namespace) -> int:
    from tilegraph.local.workspace import run_export

    return run_export(Path(args.directory), args.server, _token(args), args.email)


def cmd_apply(args: argparse.Namespace) -> int:
    from tilegraph.local.workspace import run_apply

    return run_apply(
        Path(args.directory),
        args.server,
        _token(args),
        args.email,
        dry_run=args.dry_run,
        prune=args.prune,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    from tilegraph.local.demo import DemoError, dashboard_directions, run_demo

    email = args.admin_email or os.environ.get("TILEGRAPH_ADMIN_EMAIL", "admin@tilegraph.local")
    password = os.environ.get("TILEGRAPH_ADMIN_PASSWORD") or getpass.getpass(
        f"Password for {email}: "
    )
    try:
        result = run_demo(args.server, email, password)
    except DemoError as exc:
        print(f"tilegraph demo: {exc}", file=sys.stderr)
        return 1
    if result.created:
        print(f"Demo workspace created. Sign in as {result.email} / {result.password}")
        if result.dashboard_id:
            print(
                dashboard_directions(result.dashboard_id, result.dashboard_name, args.server, email)
            )
    else:
        print(f"The demo workspace already exists ({result.email}).")
    return 0


def cmd_aws_emulator(args: argparse.Namespace) -> int:
    from tilegraph.local.emulator import serve

    serve(args.host, args.port, Path(args.state_file) if args.state_file else None)
    return 0


def _client_arguments(parser: argparse.ArgumentParser) -> None:
    """How a command that talks to a running server finds it and signs in."""
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--token", help="a token; defaults to TILEGRAPH_TOKEN")
    parser.add_argument(
        "--email", help="sign in with this email instead of a token (asks the password)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tilegraph", description="Tilegraph BI backend")
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run everything locally (AWS emulator, Redis, API, worker)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000)
    dev.add_argument("--data-dir", default=".tilegraph")
    dev.add_argument("--no-demo", action="store_true", help="do not create the demo workspace")
    dev.set_defaults(func=cmd_dev)

    serve = sub.add_parser("serve", help="run the API (settings from TILEGRAPH_* variables)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run a job worker")
    worker.add_argument(
        "--burst",
        action="store_true",
        help="run what is queued, then exit (no schedule ticks or sweeps)",
    )
    worker.add_argument(
        "--check", action="store_true", help="exit 0 when a worker of this queue is alive"
    )
    worker.set_defaults(func=cmd_worker)

    schema = sub.add_parser("schema", help="print the GraphQL schema (SDL)")
    schema.set_defaults(func=cmd_schema)

    admin = sub.add_parser("create-admin", help="create an administrator")
    admin.add_argument("--email", required=True)
    admin.add_argument("--name", default="Administrator")
    admin.add_argument("--password", help="defaults to TILEGRAPH_ADMIN_PASSWORD, else asked")
    admin.set_defaults(func=cmd_create_admin)

    upload = sub.add_parser("import", help="upload a CSV through the API and follow its import")
    upload.add_argument("file")
    upload.add_argument("--name", required=True)
    _client_arguments(upload)
    upload.set_defaults(func=cmd_import)

    export = sub.add_parser(
        "export", help="write your cards, transforms and dashboards as files to DIRECTORY"
    )
    export.add_argument("directory")
    _client_arguments(export)
    export.set_defaults(func=cmd_export)

    apply = sub.add_parser(
        "apply", help="make the server's cards, transforms and dashboards match DIRECTORY"
    )
    apply.add_argument("directory")
    apply.add_argument("--dry-run", action="store_true", help="print the plan; change nothing")
    apply.add_argument(
        "--prune", action="store_true", help="delete what has a workspace key but no file"
    )
    _client_arguments(apply)
    apply.set_defaults(func=cmd_apply)

    ticker = sub.add_parser(
        "schedule-tick", help="queue due scheduled transforms once (workers do this every minute)"
    )
    ticker.add_argument("--at", help="evaluate schedules as of this ISO time instead of now")
    ticker.set_defaults(func=cmd_schedule_tick)

    demo = sub.add_parser("demo", help="create the demo workspace on a running server")
    demo.add_argument("--server", default="http://127.0.0.1:8000")
    demo.add_argument("--admin-email", help="defaults to TILEGRAPH_ADMIN_EMAIL")
    demo.set_defaults(func=cmd_demo)

    emulator = sub.add_parser("aws-emulator", help="the local AWS emulator used by `dev`")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=4566)
    emulator.add_argument("--state-file", default=None)
    emulator.set_defaults(func=cmd_aws_emulator)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    raise SystemExit(args.func(args))


if __name__ == "__main__":
    main()
