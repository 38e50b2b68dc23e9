"""The staff commands: ``console`` (the web console, and ``console add-staff``) and ``publish``.

:func:`register` adds them to the typer app of :mod:`pointengine.cli.main`. FastAPI and uvicorn
(the ``service`` extra) are imported only when the console starts.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from pointengine.catalog.publish import AuditTrail, publish, publish_message
from pointengine.catalog.shipped import rules_folder
from pointengine.console.accounts import Accounts
from pointengine.errors import ConfigurationError, OutputError, PublishRefused
from pointengine.i18n import Lang, lang_from_env
from pointengine.model.jst import JST

__all__ = ["register"]

STATE_DEFAULT = Path("console-state")
State = Annotated[Path, typer.Option(
    "--state", help="the console's folder: accounts.json and the audit trail audit.jsonl")]
Rules = Annotated[Path | None, typer.Option(
    "--rules", help="the rules folder staff publish into",
    show_default="rules/ if the working directory has one, else the shipped rules")]

console_app = typer.Typer(no_args_is_help=False, help="The staff console in the browser.")


@console_app.callback(invoke_without_command=True)
def console(
    ctx: typer.Context,
    rules: Rules = None,
    state: State = STATE_DEFAULT,
    history: Annotated[Path | None, typer.Option(
        help="folder of past events and ledgers (*.jsonl) staff may replay and explain")] = None,
    host: Annotated[str, typer.Option(help="address to listen on (the console is local)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8300,
    lang: Annotated[str, typer.Option(help="the pages' language until staff switch: ja or en")]
    = "ja",
    server_name: Annotated[list[str] | None, typer.Option(
        help="a host name the console is reached by besides 127.0.0.1 and localhost (repeat "
        "for several); requests naming any other host are refused")] = None,
) -> None:
    """Start the staff console (http://127.0.0.1:8300 by default).

    Add staff first: ``pointengine console add-staff NAME --jurisdiction CODE``.
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from pointengine.console.app import ConsoleConfig, create_console

    folder = rules_folder(rules)
    if not Accounts(state / "accounts.json").names():
        typer.echo(f"console: no staff accounts in {state}; add one first: pointengine console "
                   "add-staff NAME --jurisdiction CODE", err=True)
        raise typer.Exit(2)
    chosen: Lang = "en" if lang == "en" else "ja"
    hosts = tuple(dict.fromkeys((host, "127.0.0.1", "localhost", *(server_name or ()))))
    app = create_console(ConsoleConfig(rules=folder, state=state, history=history, lang=chosen,
                                       hosts=hosts))
    typer.echo(f"console: http://{host}:{port}/ (rules {folder}, state {state})", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@console_app.command("add-staff")
def add_staff(
    name: Annotated[str, typer.Argument(help="the staff member's sign-in name")],
    jurisdiction: Annotated[str, typer.Option(
        help="local government code (6 digits) of their municipality or prefecture, or "
        "'national'")],
    state: State = STATE_DEFAULT,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="read the password from the first line of stdin")] = False,
) -> None:
    """Add a member of staff (or set a new password), for one jurisdiction."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        account = Accounts(state / "accounts.json").add(name, jurisdiction, password)
    except (ConfigurationError, OutputError) as exc:
        typer.echo(f"add-staff: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{account.name}: staff of {account.jurisdiction} ({state / 'accounts.json'})")


def publish_command(
    draft: Annotated[Path, typer.Argument(help="the program file as it should be")],
    as_: Annotated[str, typer.Option("--as", help="the staff account publishing it")],
    effective_from: Annotated[dt.datetime, typer.Option(
        help="when the new version takes effect (JST unless an offset is given)",
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"])],
    reason: Annotated[str, typer.Option(help="why: the version's note and the audit trail's")],
    program: Annotated[str | None, typer.Option(
        help="the program the draft revises (none: a new program file named like DRAFT)")]
    = None,
    rules: Rules = None,
    state: State = STATE_DEFAULT,
    lang: Annotated[str | None, typer.Option(help="ja or en")] = None,
) -> None:
    """Publish a new version of a program (or a new program), recorded in the audit trail."""
    chosen: Lang = "ja" if lang == "ja" else "en" if lang == "en" else lang_from_env()
    account = Accounts(state / "accounts.json").names()
    if as_ not in account:
        typer.echo(f"publish: no staff account {as_!r} in {state}", err=True)
        raise typer.Exit(2)
    try:
        text = draft.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"publish: cannot read {draft}: {exc}", err=True)
        raise typer.Exit(2) from None
    when = effective_from if effective_from.tzinfo else effective_from.replace(tzinfo=JST)
    try:
        done = publish(rules=rules_folder(rules), draft=text, who=as_,
                       staff_jurisdiction=account[as_], reason=reason, effective_from=when,
                       trail=AuditTrail(state / "audit.jsonl"), program=program,
                       new_file=None if program else draft.name)
    except PublishRefused as exc:
        typer.echo(f"publish: {publish_message(exc, chosen)}", err=True)
        raise typer.Exit(1) from None
    except OutputError as exc:
        typer.echo(f"publish: {exc}", err=True)
        raise typer.Exit(1) from None
    if chosen == "ja":
        typer.echo(f"{done.file}: {done.program} 版 {done.version}"
                   f"（{done.effective_from} から適用）を公開しました")
    else:
        typer.echo(f"{done.file}: {done.program} version {done.version} from "
                   f"{done.effective_from}")
    typer.echo(done.appended, nl=False)


def register(app: typer.Typer) -> None:
    """Add ``console`` (with ``add-staff``) and ``publish`` to ``app``."""
    app.add_typer(console_app, name="console")
    app.command("publish")(publish_command)
