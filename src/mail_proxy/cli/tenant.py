"""``mail-proxy NAME TENANT ...``: one tenant's accounts, messages and sending."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

import click
from rich.progress import Progress

from mail_proxy.cli.eml import eml_files, eml_message
from mail_proxy.cli.groups import NamedGroup
from mail_proxy.cli.output import (
    ask,
    confirm,
    done,
    err_console,
    force_option,
    json_option,
    show_record,
    show_rows,
    write_csv,
)
from mail_proxy.cli.scope import FAILURES, Scope, dump, pass_scope
from mail_proxy.client import ValidationError
from mail_proxy.client.api import MessageStatus

F = TypeVar("F", bound=Callable[..., Any])

# last_error: why a deferred message waits (or why a failed one failed).
MESSAGE_COLUMNS = [
    "pk",
    "id",
    "status",
    "account_id",
    "subject",
    "deferred_ts",
    "sent_ts",
    "last_error",
]
ACCOUNT_COLUMNS = ["id", "host", "port", "user", "use_tls", "is_default", "default_from"]


def tenant_options(command: F) -> F:
    """The options of ``tenants add`` and ``tenants update`` (the API's tenant fields)."""
    options = [
        click.option("--name", help="Display name."),
        click.option("--base-url", "client_base_url", help="Application URL for client sync."),
        click.option("--sync-path", "client_sync_path", help="Default /mail-proxy/sync."),
        click.option("--attachment-path", "client_attachment_path", help="For fetched files."),
        click.option(
            "--auth-method",
            type=click.Choice(["none", "bearer", "basic"]),
            help="How the proxy authenticates to the application.",
        ),
        click.option("--auth-token", help="Bearer token for client sync."),
        click.option("--auth-user", help="Basic auth user for client sync."),
        click.option("--auth-password", help="Basic auth password for client sync."),
        click.option("--active/--inactive", default=None, help="Whether the tenant may send."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tenant_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The tenant fields given on the command line, ``client_auth`` gathered."""
    auth = {
        key: options.pop(f"auth_{key}")
        for key in ("method", "token", "user", "password")
        if options.get(f"auth_{key}") is not None
    }
    fields = {key: value for key, value in options.items() if value is not None}
    for key in ("method", "token", "user", "password"):
        fields.pop(f"auth_{key}", None)
    if auth:
        fields["client_auth"] = auth
    return fields


@click.group("TENANT", cls=NamedGroup, label="TENANT", errors=FAILURES)
@click.pass_context
def tenant_group(ctx: click.Context) -> None:
    """Commands of tenant TENANT of the instance.

    \b
    Examples:
      mail-proxy myserver acme accounts list
      mail-proxy myserver acme send invoice.eml
    """
    ctx.ensure_object(Scope).tenant = ctx.info_name


@tenant_group.command("info")
@json_option
@pass_scope
def tenant_info(scope: Scope, as_json: bool) -> None:
    """Show the tenant and the counts of its accounts and messages.

    \b
    Example:
      mail-proxy myserver acme info --json
    """
    proxy = scope.client()
    record = dump(proxy.tenants.get(scope.tenant_id))
    counts = proxy.stats(tenant_id=scope.tenant_id)
    record |= {"accounts": counts.accounts, "messages": counts.messages}
    show_record(record, as_json, f"tenant {scope.tenant_id}")


@tenant_group.command("run-now")
@pass_scope
def run_now(scope: Scope) -> None:
    """Send the tenant's due messages and report to it now (clears Do Not Disturb).

    \b
    Example:
      mail-proxy myserver acme run-now
    """
    scope.client().run_now(tenant_id=scope.tenant_id)
    done(f"dispatch and client sync of {scope.tenant_id!r} woken")


batch_option = click.option(
    "--batch", "batch_code", help="One batch code instead of the whole tenant."
)


@tenant_group.command("suspend")
@batch_option
@json_option
@pass_scope
def suspend(scope: Scope, batch_code: str | None, as_json: bool) -> None:
    """Stop sending the tenant's messages (or one batch's); they stay queued.

    \b
    Example:
      mail-proxy myserver acme suspend --batch newsletter-42
    """
    switched = scope.client().suspend(tenant_id=scope.tenant_id, batch_code=batch_code)
    show_record(dump(switched), as_json, f"tenant {scope.tenant_id} suspended")


@tenant_group.command("activate")
@batch_option
@json_option
@pass_scope
def activate(scope: Scope, batch_code: str | None, as_json: bool) -> None:
    """Resume sending: every suspension of the tenant ends, or only one batch's.

    \b
    Example:
      mail-proxy myserver acme activate
    """
    switched = scope.client().activate(tenant_id=scope.tenant_id, batch_code=batch_code)
    show_record(dump(switched), as_json, f"tenant {scope.tenant_id} active")


# -- accounts -----------------------------------------------------------------------


@tenant_group.group()
def accounts() -> None:
    """SMTP accounts of the tenant: list, show, add, delete.

    \b
    Example:
      mail-proxy myserver acme accounts add --id main --host smtp.acme.example
    """


@accounts.command("list")
@json_option
@pass_scope
def list_accounts(scope: Scope, as_json: bool) -> None:
    """List the tenant's SMTP accounts (passwords never shown).

    \b
    Example:
      mail-proxy myserver acme accounts list --json
    """
    found = scope.client().accounts.list(tenant_id=scope.tenant_id).accounts
    show_rows([dump(account) for account in found], ACCOUNT_COLUMNS, as_json, "accounts")


@accounts.command("show")
@click.argument("account_id")
@json_option
@pass_scope
def show_account(scope: Scope, account_id: str, as_json: bool) -> None:
    """Show one SMTP account.

    \b
    Example:
      mail-proxy myserver acme accounts show main
    """
    found = scope.client().accounts.get(account_id, tenant_id=scope.tenant_id)
    show_record(dump(found), as_json, f"account {account_id}")


@accounts.command("add")
@click.option("--id", "account_id", help="Account id (asked if missing).")
@click.option("--host", help="SMTP server (asked if missing).")
@click.option("--port", type=click.IntRange(1, 65535), help="Default 587 (465: implicit TLS).")
@click.option("--user", "--username", "user", help="SMTP user.")
@click.option("--password", help="SMTP password (asked without echo when a user is given).")
@click.option("--use-tls/--no-tls", default=None, help="STARTTLS (default: by port).")
@click.option("--default-from", "--from-address", "default_from", help="Sender when none.")
@click.option("--limit-per-minute", type=click.IntRange(min=1))
@click.option("--limit-per-hour", "--hourly-limit", "limit_per_hour", type=click.IntRange(min=1))
@click.option("--limit-per-day", "--daily-limit", "limit_per_day", type=click.IntRange(min=1))
@click.option("--default", "is_default", is_flag=True, help="The tenant's default account.")
@pass_scope
def add_account(scope: Scope, /, **fields: Any) -> None:
    """Add (or replace) an SMTP account of the tenant.

    Options left out are asked for at a terminal (never in a script).

    \b
    Example:
      mail-proxy myserver acme accounts add --id main --host smtp.acme.example \\
          --port 587 --user mailer --default-from noreply@acme.example
    """
    fields["account_id"] = ask(fields["account_id"], "--id", "Account id", required=True)
    fields["host"] = ask(fields["host"], "--host", "SMTP host", required=True)
    fields["port"] = ask(fields["port"], "--port", "SMTP port", default=587)
    fields["user"] = ask(fields["user"], "--user", "SMTP user")
    if fields["user"] is not None:
        fields["password"] = ask(fields["password"], "--password", "SMTP password", secret=True)
    account_id = fields.pop("account_id")
    given = {key: value for key, value in fields.items() if value is not None}
    scope.client().accounts.add(id=account_id, tenant_id=scope.tenant_id, **given)
    done(f"account {account_id!r} saved for tenant {scope.tenant_id!r}")


@accounts.command("delete")
@click.argument("account_id")
@force_option
@pass_scope
def delete_account(scope: Scope, account_id: str, force: bool) -> None:
    """Delete an SMTP account of the tenant.

    \b
    Example:
      mail-proxy myserver acme accounts delete main --force
    """
    confirm(f"Delete account {account_id!r} of tenant {scope.tenant_id!r}?", force)
    scope.client().accounts.delete(account_id, tenant_id=scope.tenant_id)
    done(f"account {account_id!r} deleted")


# -- messages -----------------------------------------------------------------------


@tenant_group.group()
def messages() -> None:
    """Messages of the tenant.

    \b
    Example:
      mail-proxy myserver acme messages list --status error
    """


@messages.command("list")
@click.option("--status", type=click.Choice(get_args(MessageStatus)))
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (for spreadsheets).")
@pass_scope
def list_messages(
    scope: Scope, status: str | None, limit: int, as_json: bool, as_csv: bool
) -> None:
    """List the tenant's queue records, newest state first.

    \b
    Examples:
      mail-proxy myserver acme messages list --status sent
      mail-proxy myserver acme messages list --csv > messages.csv
    """
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    chosen = cast("MessageStatus | None", status)  # one of the Choice above
    page = scope.client().messages.list(tenant_id=scope.tenant_id, status=chosen, limit=limit)
    rows = [_message_row(dump(message)) for message in page.messages]
    if as_csv:
        write_csv(rows, MESSAGE_COLUMNS)
        return
    show_rows(rows, MESSAGE_COLUMNS, as_json, "messages")


def _message_row(record: dict[str, Any]) -> dict[str, Any]:
    payload = record.get("payload") or {}
    return {"subject": payload.get("subject")} | record


@tenant_group.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--account", "account_id", help="SMTP account (default: the tenant's).")
@click.option("--priority", help="0-3 or immediate, high, medium, low.")
@pass_scope
def send(scope: Scope, path: Path, account_id: str | None, priority: str | None) -> None:
    """Queue an .eml file, or every .eml file of a folder, for the tenant.

    Each file is taken apart here (addresses, subject, body, attachments, headers)
    and queued through the API; the proxy builds and sends the message.

    \b
    Examples:
      mail-proxy myserver acme send invoice.eml --priority high
      mail-proxy myserver acme send outbox/
    """
    files = eml_files(path)
    extra = {k: v for k, v in {"account_id": account_id, "priority": priority}.items() if v}
    failed: list[str] = []
    with Progress(console=err_console, transient=True, disable=len(files) == 1) as progress:
        task = progress.add_task("sending", total=len(files))
        for file in files:
            reason = _send_one(scope, file, extra)
            if reason:
                failed.append(f"{file.name}: {reason}")
            progress.advance(task)
    for line in failed:
        click.echo(f"rejected {line}", err=True)
    done(f"queued {len(files) - len(failed)} of {len(files)} for {scope.tenant_id!r}")
    if failed:
        raise SystemExit(1)


def _send_one(scope: Scope, file: Path, extra: dict[str, Any]) -> str | None:
    """Queue one file; the reason it was refused, or None."""
    entry = eml_message(file) | extra
    try:
        answer = scope.client().messages.add([entry], tenant_id=scope.tenant_id)
    except ValidationError as refused:
        return "; ".join(r.reason for r in refused.rejected or []) or refused.message
    return "; ".join(r.reason for r in answer.rejected) or None
