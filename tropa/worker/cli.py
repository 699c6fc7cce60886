"""The `tropa` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from tropa.errors import JourneyInvalid, SettingsUnsafe
from tropa.logs import configure
from tropa.settings import Settings, get_settings
from tropa.worker.cli_customers import add_commands as add_customer_commands
from tropa.worker.cli_simulate import add_commands as add_simulate_commands


def _validate(args: argparse.Namespace) -> int:
    from tropa.dsl.compiler import compile_journey

    failed = 0
    for name in args.files:
        path = Path(name)
        try:
            plan = compile_journey(path.read_text(encoding="utf-8"), str(path))
        except FileNotFoundError:
            print(f"{path}: error: no such file", file=sys.stderr)
            failed += 1
            continue
        except IsADirectoryError:
            print(f"{path}: error: a folder; name the files, e.g. {path}/*.yaml", file=sys.stderr)
            failed += 1
            continue
        except UnicodeDecodeError:
            print(f"{path}: error: not UTF-8 text; save the journey as UTF-8", file=sys.stderr)
            failed += 1
            continue
        except OSError as exc:
            print(f"{path}: error: cannot read: {exc.strerror}", file=sys.stderr)
            failed += 1
            continue
        except JourneyInvalid as exc:
            print(exc, file=sys.stderr)
            count = len(exc.problems)
            print(f"{path}: {count} error{'s' if count != 1 else ''}\n", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: ok  journey={plan.journey} version={plan.version} "
              f"trigger={plan.trigger.event} steps={_count(plan.steps)} "
              f"category={plan.category} re_entry={plan.re_entry}")
    return 1 if failed else 0


def _graph(args: argparse.Namespace) -> int:
    from tropa.dsl.compiler import compile_journey
    from tropa.dsl.graph import mermaid

    path = Path(args.file)
    try:
        plan = compile_journey(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: error: cannot read the journey ({type(exc).__name__}); name a UTF-8 "
              "journey file", file=sys.stderr)
        return 1
    except JourneyInvalid as exc:
        print(exc, file=sys.stderr)
        return 1
    print(mermaid(plan), end="")
    return 0


def _count(steps: list) -> int:  # type: ignore[type-arg]
    return sum(1 + sum(_count(c) for c in s.children.values()) for s in steps)


def _dev(args: argparse.Namespace) -> int:
    from tropa.worker.devserver import PortTaken
    from tropa.worker.stack import run_stack

    settings = get_settings()
    examples = Path(args.examples) if args.examples else None
    try:
        asyncio.run(run_stack(settings, examples))
    except PortTaken as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _refused(settings: Settings) -> bool:
    """Print why a production process must not start with these settings."""
    from tropa.dev_secrets import refuse_unsafe_secrets

    try:
        refuse_unsafe_secrets(settings)
    except SettingsUnsafe as exc:
        print(f"error: {exc}", file=sys.stderr)
        return True
    return False


def _worker(_args: argparse.Namespace) -> int:
    from tropa.worker.processes import run_all

    settings = get_settings()
    if _refused(settings):
        return 2
    asyncio.run(run_all(settings))
    return 0


def _api(_args: argparse.Namespace) -> int:
    import uvicorn
    import uvloop

    from tropa.api.main import create_app
    from tropa.worker.stack import open_database
    from tropa.worker.temporal_client import connect

    settings = get_settings()
    if _refused(settings):
        return 2

    async def run() -> None:
        client = await connect(settings.temporal)
        app = create_app(settings, open_database(settings), client)
        # uvicorn's access log follows TROPA_LOG_LEVEL (a line per request at INFO only).
        await uvicorn.Server(uvicorn.Config(app, host=settings.api.host, port=settings.api.port,
                                            log_level=settings.log_level.lower())).serve()

    uvloop.run(run())  # uvicorn's own choice of loop, which asyncio.run would bypass
    return 0


def _sandbox(_args: argparse.Namespace) -> int:
    import uvicorn

    from tropa.api.access_log import hide_query_strings
    from tropa.sandbox.app import Sandbox, create_sandbox_app

    settings = get_settings()
    hide_query_strings()  # `?to=` holds phone numbers
    # Signs receipts with the key the API checks them with; keeps what it accepted in the
    # data folder, as under `tropa dev`.
    box = Sandbox(settings.delivery.receipts_secret.get_secret_value(),
                  store=settings.data_dir / "sandbox-messages.jsonl")
    uvicorn.run(create_sandbox_app(box), host=settings.sandbox.host, port=settings.sandbox.port)
    return 0


def _migrate(_args: argparse.Namespace) -> int:
    from tropa.store.db import migrate

    migrate(get_settings().database_url())
    print("database is at the newest schema")
    return 0


def _keys_create(args: argparse.Namespace) -> int:
    from tropa.services.api_keys import create_key
    from tropa.store.db import session_scope
    from tropa.worker.stack import open_database

    try:
        with session_scope(open_database(get_settings())) as session:
            plain = create_key(session, args.name, args.scope)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plain)
    return 0


def _publish(args: argparse.Namespace) -> int:
    from tropa.services import journeys
    from tropa.store.db import session_scope
    from tropa.worker.stack import open_database

    engine = open_database(get_settings())
    for name in args.files:
        try:
            with session_scope(engine) as session:
                row = journeys.create_version(session, Path(name).read_text(), name)
                journeys.publish(session, row.journey, row.version)
        except JourneyInvalid as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"{name}: published {row.journey}@{row.version}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from tropa.steps.builtin import build_registry
    from tropa.ui_schema import stale_files, write_files

    reg = build_registry(plugins=args.with_plugins)
    out = Path(args.out)
    if args.check:
        stale = stale_files(reg, out)
        for name in stale:
            print(f"{out / name}: stale; regenerate with `tropa schema --out {out}`",
                  file=sys.stderr)
        if not stale:
            print(f"{out}: up to date")
        return 1 if stale else 0
    for path in write_files(reg, out):
        print(f"wrote {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line's grammar."""
    p = argparse.ArgumentParser(prog="tropa", description="Tropa retail journey engine")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("validate", help="check journey files; print every error")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=_validate)
    d = sub.add_parser("dev", help="run the whole stack on embedded defaults")
    d.add_argument("--examples", default="examples", help="journeys to publish at start")
    d.set_defaults(func=_dev)
    sub.add_parser("worker", help="run a worker").set_defaults(func=_worker)
    sub.add_parser("api", help="run the HTTP API").set_defaults(func=_api)
    sub.add_parser("sandbox", help="run the sandbox providers").set_defaults(func=_sandbox)
    sub.add_parser("migrate", help="migrate the database").set_defaults(func=_migrate)
    g = sub.add_parser("graph", help="print a journey as a Mermaid flowchart")
    g.add_argument("file")
    g.set_defaults(func=_graph)
    pub = sub.add_parser("publish", help="store and publish journey files")
    pub.add_argument("files", nargs="+")
    pub.set_defaults(func=_publish)
    sc = sub.add_parser("schema", help="write the journey JSON Schema and form hints")
    sc.add_argument("--out", default="ui_schema", help="directory of the generated files")
    sc.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the files differ from the registry")
    sc.add_argument("--with-plugins", action="store_true",
                    help="include step types of installed plugins (default: built-ins only, "
                    "as checked in)")
    sc.set_defaults(func=_schema)
    keys = sub.add_parser("keys", help="API keys").add_subparsers(dest="keys", required=True)
    kc = keys.add_parser("create", help="make an API key and print it once")
    kc.add_argument("--scope", action="append", required=True,
                    help="events:write, read or admin; repeat for several")
    kc.add_argument("--name", default="api client")
    kc.set_defaults(func=_keys_create)
    add_customer_commands(sub)
    add_simulate_commands(sub)
    return p


def main(argv: list[str] | None = None) -> None:
    """Entry point; exits without interpreter teardown (see below)."""
    args = parser().parse_args(argv)
    configure(get_settings().log_level)
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        code = 130
    # The temporalio SDK's native runtime can abort (exit 134) while the interpreter tears
    # down (sdk-python issue 300). The command's own result is known here, so flush and
    # leave with it; a real failure still raises above and exits non-zero with a traceback.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
