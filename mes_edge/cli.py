"""The `mes-edge` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from mes_edge.config import ConfigError, Settings, load_settings


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions", "uvicorn.error", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The protocol libraries log every failed retry; our drivers log a link lost once and
    # recovered once (with the reason), so only the libraries' real errors get through.
    for chatty in ("asyncua", "pymodbus"):
        logging.getLogger(chatty).setLevel(logging.ERROR)
    # Alembic narrates every plugin and migration step at INFO; a token printed once must not
    # be buried under it. `db upgrade` says where the schema is; -v shows Alembic's lines.
    if not verbose:
        logging.getLogger("alembic").setLevel(logging.WARNING)


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as err:
        print(f"mes-edge: {err}", file=sys.stderr)
        raise SystemExit(2) from err


async def wait_for_stop_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run(settings: Settings) -> None:
    from mes_edge.api.app import create_api
    from mes_edge.app.service import EdgeService

    service = EdgeService(settings, api_factory=create_api)
    await service.start()
    try:
        await wait_for_stop_signal()
    finally:
        await service.stop()


def cmd_run(args: argparse.Namespace) -> int:
    """Run the service until SIGINT/SIGTERM."""
    from mes_edge.app.service import StartupError

    settings = _load(args.config)
    try:
        asyncio.run(_run(settings))
    except StartupError as err:  # a second instance, a taken port: one line, no traceback
        print(f"mes-edge: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a plant file and summarise it."""
    s = _load(args.file)
    print(
        f"{args.file}: OK - site {s.site!r}, {len(s.work_centers)} work centers "
        f"({', '.join(w.id for w in s.work_centers)}), {len(s.devices)} devices, "
        f"{len(s.rules)} rule sets, database {s.database.url.split('://')[0]}, "
        f"MQTT {'on' if s.mqtt else 'off'}"
    )
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """Schema upgrade, and replay verification of the event log."""
    from mes_edge.store import upgrade_sync

    s = _load(args.config)
    if args.db_command == "upgrade":
        upgrade_sync(s.database.url, args.revision)
        print(f"database at {args.revision}")
        return 0
    if args.db_command in ("snapshot", "retention"):
        return asyncio.run(_history(s, args.db_command))

    async def verify() -> int:
        from mes_edge.app.plant import plant_rules
        from mes_edge.app.progress import progress_rules
        from mes_edge.dispatcher.replay import verify as replay_verify
        from mes_edge.dispatcher.replay import verify_progress
        from mes_edge.store import Store

        store = await Store.open(s.database.url, migrate=False)
        try:
            report = await replay_verify(store, plant_rules(s))
            progress = await verify_progress(store, plant_rules(s), progress_rules(s))
        finally:
            await store.close()
        start = (f" after the snapshot of event {report.snapshot_seq}" if report.snapshot_seq
                 else "")
        code = 0
        if report.equal:
            print(f"replayed {report.events} events{start}: the stored WIP equals the event log")
        else:
            print(f"replayed {report.events} events{start}: {len(report.differences)} "
                  "differences:")
            for line in report.differences[:50]:
                print(f"  {line}")
            code = 1
        # issue 11: the timeline and the OEE rollups, rebuilt from the whole log.
        if progress.skipped is not None:
            print(f"state timeline and OEE rollups not verified: {progress.skipped}")
        elif progress.equal:
            print(f"replayed {progress.events} events (the whole log): the stored state timeline "
                  f"({progress.spans} spans) and OEE rollups ({progress.buckets} buckets) equal "
                  "the event log")
        else:
            print(f"replayed {progress.events} events (the whole log): "
                  f"{len(progress.differences)} differences in the state timeline and OEE "
                  "rollups:")
            for line in progress.differences[:50]:
                print(f"  {line}")
            code = 1
        return code

    return asyncio.run(verify())


async def _history(s: Any, what: str) -> int:
    """`db snapshot`: take a WIP snapshot now; `db retention`: a snapshot, then purge and export
    what `history` says is too old."""
    from mes_edge.app.history import history_round
    from mes_edge.app.plant import plant_rules
    from mes_edge.store import Store

    store = await Store.open(s.database.url, migrate=False)
    try:
        seq, events, refusals = await history_round(store, plant_rules(s), s.history)
    finally:
        await store.close()
    print(f"snapshot: {'after event ' + str(seq) if seq is not None else 'no new events'}")
    if what == "retention":
        print(f"retention: purged {events} events and {refusals} refused events")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Create or revoke API tokens."""
    from mes_edge.store import Store
    from mes_edge.store.tokens import Role, create_token, list_tokens, revoke_token

    s = _load(args.config)

    async def go() -> int:
        store = await Store.open(s.database.url, migrate=s.database.auto_migrate)
        try:
            if args.token_command == "create":
                known = {w.id for w in s.work_centers}
                unknown = [w for w in args.work_center if w not in known]
                if unknown:
                    print(f"mes-edge: unknown work center {unknown[0]!r}", file=sys.stderr)
                    return 2
                try:
                    token = await create_token(
                        store, Role(args.role), args.name or f"{args.role} token", args.work_center,
                        expires_in=args.expires_in,
                    )
                except ValueError as err:
                    print(f"mes-edge: {err}", file=sys.stderr)
                    return 2
                print(token)
                return 0
            if args.token_command == "list":
                print(f"{'TOKEN ID':{_ID_WIDTH}}  {'ROLE':10} {'STATE':8} {'EXPIRES':17} "
                      f"{'LAST USED':17} {'WORK CENTERS':20} NAME")
                for t in await list_tokens(store):
                    wcs = ",".join(t["work_centers"]) or "-"  # type: ignore[arg-type]
                    print(f"{t['token_id']:{_ID_WIDTH}}  {t['role']:10} {t['state']:8} "
                          f"{_when(t['expires_at']):17} {_when(t['last_used_at']):17} "
                          f"{wcs:20} {t['name']}")
                return 0
            if await revoke_token(store, args.token_id):
                print(f"token {args.token_id} revoked (a running service refuses it within 5 s)")
                return 0
            print(f"mes-edge: no token {args.token_id!r}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(go())


def cmd_operator(args: argparse.Namespace) -> int:
    """Create or change an operator who identifies at stations by badge (and PIN)."""
    import os

    from mes_edge.store import Store
    from mes_edge.store.tokens import upsert_operator

    if args.operator_command != "add":
        return _operator_admin(args)
    s = _load(args.config)
    known = {w.id for w in s.work_centers}
    unknown = [w for w in args.work_center if w not in known]
    if unknown:
        print(f"mes-edge: unknown work center {unknown[0]!r}", file=sys.stderr)
        return 2
    pin = os.environ.get(args.pin_env) if args.pin_env else None
    if args.pin_env and not pin:
        print(f"mes-edge: environment variable {args.pin_env} is not set", file=sys.stderr)
        return 2
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        print("mes-edge: a PIN is 4 to 12 digits", file=sys.stderr)
        return 2

    async def go() -> int:
        store = await Store.open(s.database.url, migrate=s.database.auto_migrate)
        try:
            await upsert_operator(store, args.badge, args.name, pin, args.work_center)
        finally:
            await store.close()
        print(f"operator {args.badge} ({args.name}) saved"
              f"{', with a PIN' if pin else ''}")
        return 0

    return asyncio.run(go())


def _operator_admin(args: argparse.Namespace) -> int:
    """`operator list` and `operator disable BADGE`."""
    from mes_edge.store import Store
    from mes_edge.store.tokens import list_operators, set_operator_active

    s = _load(args.config)

    async def go() -> int:
        store = await Store.open(s.database.url, migrate=s.database.auto_migrate)
        try:
            if args.operator_command == "list":
                print(f"{'BADGE':16} {'STATE':8} {'PIN':4} {'WORK CENTERS':20} NAME")
                for o in await list_operators(store):
                    wcs = ",".join(o["work_centers"]) or "all"  # type: ignore[arg-type]
                    print(f"{o['badge']:16} {'active' if o['active'] else 'disabled':8} "
                          f"{'yes' if o['has_pin'] else 'no':4} {wcs:20} {o['name']}")
                return 0
            if await set_operator_active(store, args.badge, False):
                print(f"operator {args.badge} disabled (a running service signs them out "
                      "within 30 s)")
                return 0
            print(f"mes-edge: no operator {args.badge!r}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(go())


def _when(value: object) -> str:
    """A time of `token list`: UTC to the minute, '-' for none."""
    return value.strftime("%Y-%m-%d %H:%MZ") if isinstance(value, datetime) else "-"


def duration(text: str) -> timedelta:
    """`--expires-in`: a number with s, m, h or d (90d, 12h)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or not int(value[:-1]):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])


def cmd_demo(args: argparse.Namespace) -> int:
    """The virtual factory in one command."""
    from mes_edge.demo import run_demo

    return run_demo(args)


def cmd_sim(args: argparse.Namespace, rest: list[str]) -> int:
    """Run one simulator on its own."""
    import importlib

    module = {
        "modbus": "simulators.modbus_plc",
        "opcua": "simulators.opcua_plc",
        "scanner": "simulators.scanner",
        "erp": "simulators.erp",
    }[args.simulator]
    main = importlib.import_module(module).main
    result = main(rest)
    return int(result or 0)


#: Width of the token id column of `token list` (ids are `mes_` and 12 characters).
_ID_WIDTH = 16
_SIMULATORS = ["modbus", "opcua", "scanner", "erp"]


class _Formatter(argparse.HelpFormatter):
    """Help that shows each option's default (required options and flags have none to show)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.required or action.default in (None, [], False, argparse.SUPPRESS)
                or "default" in text):
            return text
        return f"{text} (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used for --help)."""
    p = argparse.ArgumentParser(prog="mes-edge", description="Shop-floor MES edge service.",
                                formatter_class=_Formatter)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="debug logging (also Alembic's and the protocol libraries' lines)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(parent: Any, name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=text, description=text, formatter_class=_Formatter)
        return parser

    def config_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", required=True, metavar="FILE",
                            help="plant YAML file (reference: docs/config.md)")

    run = command(sub, "run", "run the service with a plant file")
    config_option(run)
    run.set_defaults(func=cmd_run)

    check = command(sub, "check-config", "validate a plant file and summarise it")
    check.add_argument("file", help="plant YAML file")
    check.set_defaults(func=cmd_check_config)

    db = command(sub, "db", "database schema and event log")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    up = command(db_sub, "upgrade", "migrate the schema (Alembic)")
    config_option(up)
    up.add_argument("--revision", default="head", help="Alembic revision to migrate to")
    ver = command(db_sub, "verify", "replay the event log (from the newest WIP snapshot) "
                  "and compare with stored WIP; rebuild the state timeline and OEE rollups "
                  "from the whole log and compare with the stored ones")
    config_option(ver)
    snap = command(db_sub, "snapshot", "take a WIP snapshot now (newest snapshot + new events)")
    config_option(snap)
    ret = command(db_sub, "retention", "take a snapshot, then purge (and export) old events and "
                  "refusals as `history` configures")
    config_option(ret)
    db.set_defaults(func=cmd_db)

    token = command(sub, "token", "API tokens (shown once, stored hashed)")
    token_sub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = command(token_sub, "create", "create a token and print it (once)")
    config_option(create)
    create.add_argument("--role", required=True, choices=["operator", "supervisor", "erp", "admin"],
                        help="what the token may do")
    create.add_argument("--name", default=None,
                        help="a label for `token list` (default: '<role> token')")
    create.add_argument(
        "--work-center",
        action="append",
        default=[],
        help="work center an operator token may act on (repeat)",
    )
    create.add_argument("--expires-in", type=duration, default=None, metavar="DURATION",
                        help="lifetime, e.g. 90d, 12h, 30m (default: no expiry)")
    listing = command(token_sub, "list", "list tokens (ids, roles; never secrets)")
    config_option(listing)
    revoke = command(token_sub, "revoke", "revoke a token by its id (mes_<id>_...)")
    config_option(revoke)
    revoke.add_argument("token_id", help="the id shown by `token list`")
    token.set_defaults(func=cmd_token)

    operator = command(sub, "operator", "operators who sign in at stations")
    op_sub = operator.add_subparsers(dest="operator_command", required=True, metavar="COMMAND")
    add = command(op_sub, "add", "create or change an operator")
    config_option(add)
    add.add_argument("--badge", required=True, help="badge code (what the scanner reads)")
    add.add_argument("--name", required=True, help="the operator's name as shown on tablets")
    add.add_argument("--pin-env", default=None, metavar="VAR",
                     help="environment variable holding the PIN (never on the command line)")
    add.add_argument("--work-center", action="append", default=[],
                     help="work center the operator may sign in at (repeat; none = all)")
    op_list = command(op_sub, "list", "list operators (badges, state, whether a PIN is set)")
    config_option(op_list)
    disable = command(op_sub, "disable", "disable an operator: no more sign-in anywhere")
    config_option(disable)
    disable.add_argument("badge", help="the operator's badge")
    operator.set_defaults(func=cmd_operator)

    demo = command(sub, "demo", "run the virtual factory")
    from mes_edge.demo import add_arguments as demo_arguments

    demo_arguments(demo)
    demo.set_defaults(func=cmd_demo)

    sim = command(sub, "sim", "run one simulator; `mes-edge sim NAME --help` shows its options")
    sim.add_argument("simulator", choices=_SIMULATORS,
                     help="which simulator; the arguments after it are its own")
    sim.set_defaults(func=None)
    return p


def _sim_at(argv: list[str]) -> int | None:
    """Index of the `sim` command in argv (after global options), or None."""
    for i, arg in enumerate(argv):
        if arg == "sim":
            return i
        if arg not in ("-v", "--verbose"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    at = _sim_at(argv)
    if at is not None and len(argv) > at + 1 and argv[at + 1] in _SIMULATORS:
        # Everything after the simulator's name is the simulator's, --help included.
        args = parser.parse_args(argv[: at + 2])
        _setup_logging(args.verbose)
        return cmd_sim(args, argv[at + 2:])
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
