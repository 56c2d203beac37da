"""``mail-proxy NAME ...``: one proxy, local or remote, managed through the SDK.

Every command here is a call of ``mail_proxy.client.MailProxyClient`` with the
instance's URL and admin token: the CLI is one more client of the public API, so
it manages a proxy on another host exactly as one on this machine.
"""

from __future__ import annotations

import code
import contextlib
import secrets
from typing import Any

import click

from mail_proxy.cli.groups import NamedGroup
from mail_proxy.cli.home import Context, Instance, InstanceError, State
from mail_proxy.cli.instances import halt, launch
from mail_proxy.cli.output import (
    ask,
    confirm,
    done,
    force_option,
    json_option,
    print_json,
    show_record,
    show_rows,
)
from mail_proxy.cli.scope import FAILURES, Scope, dump, pass_scope
from mail_proxy.cli.tenant import tenant_fields, tenant_group, tenant_options


def _current_tenant(ctx: click.Context) -> str | None:
    chosen = Context.load()
    return chosen.tenant if chosen.instance == ctx.info_name else None


@click.group(
    "NAME",
    cls=NamedGroup,
    label="NAME",
    named=tenant_group,
    current=_current_tenant,
    errors=FAILURES,
)
@click.pass_context
def instance_group(ctx: click.Context) -> None:
    """Commands of instance NAME (a proxy on this machine or a remote one).

    \b
    Examples:
      mail-proxy myserver info
      mail-proxy myserver tenants list --json
      mail-proxy myserver acme messages list --status sent
    """
    # The folder is read when a command needs it, so that `NAME COMMAND --help` works
    # before the instance exists.
    scope = Scope(Instance.named(ctx.info_name or ""))
    ctx.obj = scope
    ctx.call_on_close(scope.close)


@instance_group.command()
@json_option
@pass_scope
def info(scope: Scope, as_json: bool) -> None:
    """Show the proxy's state (sending or suspended, queue, version) and settings.

    \b
    Example:
      mail-proxy myserver info --json
    """
    proxy = scope.client()
    record = {"instance": scope.instance.name, "url": scope.instance.url}
    record |= dump(proxy.status()) | dump(proxy.instance.get())
    show_record(record, as_json, f"instance {scope.instance.name}")


@instance_group.command()
@json_option
@pass_scope
def stats(scope: Scope, as_json: bool) -> None:
    """Count tenants, accounts and messages per status.

    \b
    Example:
      mail-proxy myserver stats
    """
    found = scope.client().stats()
    if as_json:
        print_json(dump(found))
        return
    record: dict[str, Any] = {"tenants": found.tenants, "accounts": found.accounts}
    record |= {f"messages {status}": count for status, count in found.messages.items()}
    show_record(record, False, f"stats of {scope.instance.name}")


@instance_group.command()
@click.option("--regenerate", is_flag=True, help="Make a new token (restarts a running instance).")
@force_option
@pass_scope
def token(scope: Scope, regenerate: bool, force: bool) -> None:
    """Print the admin token (X-API-Token) of the instance.

    The token is printed only here, on request. --regenerate replaces it; a
    running local instance is restarted so that the old token stops working.

    \b
    Examples:
      mail-proxy myserver token
      curl -H "X-API-Token: $(mail-proxy myserver token)" http://127.0.0.1:8000/status
    """
    instance = scope.instance
    if regenerate:
        if instance.remote_url:
            raise InstanceError("a remote proxy's token is set where it runs; not regenerated")
        confirm(
            f"Replace the admin token of {instance.name!r}? Clients using it stop working.", force
        )
        running = instance.state() is State.RUNNING
        if running:
            halt(instance, force=False)
        instance.save_token(secrets.token_urlsafe(32))
        if running:
            launch(instance, None, None, background=True, dev_sink=None)
    click.echo(instance.token())


@instance_group.command()
@click.option("--tenant", help="Act as this tenant in the examples of the banner.")
@pass_scope
def connect(scope: Scope, tenant: str | None) -> None:
    """Open a Python REPL with `proxy`, a client connected to the instance.

    \b
    Example:
      mail-proxy myserver connect
      >>> proxy.status()
      >>> proxy.messages.list(tenant_id="acme", status="error").messages
    """
    proxy = scope.client()
    banner = (
        f"mail-proxy {scope.instance.name} at {scope.instance.url}\n"
        "  proxy            the connected MailProxyClient\n"
        "  proxy.status(), proxy.stats(), proxy.tenants.list(), "
        f"proxy.messages.list(tenant_id={tenant or 'acme'!r})\n"
        "Ctrl-D or exit() leaves."
    )
    namespace = {"proxy": proxy, "tenant_id": tenant}
    # exit() in the REPL raises SystemExit: it ends the session, not the command.
    with contextlib.suppress(SystemExit):
        code.interact(banner=banner, local=namespace, exitmsg="")


@instance_group.command()
@json_option
@pass_scope
def config(scope: Scope, as_json: bool) -> None:
    """Show where the instance lives and its settings (the proxy's, when it runs).

    \b
    Example:
      mail-proxy myserver config --json
    """
    instance = scope.instance
    record: dict[str, Any] = {"folder": str(instance.path), **instance.config()}
    record |= {"url": instance.url, "token_file": str(instance.token_file)}
    if not instance.remote_url:
        record |= {"database": str(instance.database), "log": str(instance.log)}
    if instance.state() in (State.RUNNING, State.REMOTE):
        record["settings"] = dump(scope.client().instance.get())
    show_record(record, as_json, f"configuration of {instance.name}")


@instance_group.command("command-log")
@click.option("--tenant", "tenant_id", help="Only calls about this tenant.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_scope
def command_log(scope: Scope, tenant_id: str | None, limit: int, as_json: bool) -> None:
    """Show the audit trail of state-changing API calls (secrets masked).

    \b
    Example:
      mail-proxy myserver command-log --tenant acme --limit 20
    """
    entries = scope.client().command_log.list(tenant_id=tenant_id, limit=limit).entries
    rows = [dump(entry) for entry in entries]
    show_rows(rows, ["id", "ts", "actor", "method", "path", "status_code"], as_json, "calls")


# -- tenants ------------------------------------------------------------------------


@instance_group.group()
def tenants() -> None:
    """Tenants of the instance: list, show, add, update, delete.

    \b
    Example:
      mail-proxy myserver tenants add --id acme --name "ACME"
    """


@tenants.command("list")
@click.option("--active-only", is_flag=True, help="Leave out suspended tenants.")
@json_option
@pass_scope
def list_tenants(scope: Scope, active_only: bool, as_json: bool) -> None:
    """List the tenants.

    \b
    Example:
      mail-proxy myserver tenants list --json
    """
    rows = [dump(t) for t in scope.client().tenants.list(active_only=active_only).tenants]
    show_rows(rows, ["id", "name", "active", "client_base_url", "has_api_key"], as_json, "tenants")


@tenants.command()
@click.argument("tenant_id")
@json_option
@pass_scope
def show(scope: Scope, tenant_id: str, as_json: bool) -> None:
    """Show one tenant (secrets masked).

    \b
    Example:
      mail-proxy myserver tenants show acme
    """
    show_record(dump(scope.client().tenants.get(tenant_id)), as_json, f"tenant {tenant_id}")


@tenants.command()
@click.option("--id", "tenant_id", help="Tenant id: letters, digits, . _ - (asked if missing).")
@tenant_options
@pass_scope
def add(scope: Scope, /, tenant_id: str | None, **fields: Any) -> None:
    """Add a tenant; prints its API key, shown this once.

    Options left out are asked for at a terminal (never in a script).

    \b
    Example:
      mail-proxy myserver tenants add --id acme --name "ACME" \\
          --base-url https://app.acme.example --auth-method bearer
    """
    tenant_id = ask(tenant_id, "--id", "Tenant id", required=True)
    fields["name"] = ask(fields["name"], "--name", "Name", default=tenant_id)
    fields["client_base_url"] = ask(fields["client_base_url"], "--base-url", "Sync base URL")
    saved = scope.client().tenants.add(id=tenant_id, **tenant_fields(fields))
    done(f"tenant {tenant_id!r} {'created' if saved.created else 'updated'}")
    if saved.api_key:
        done("its API key (shown once; keep it in the application's configuration):")
        click.echo(saved.api_key)


@tenants.command()
@click.argument("tenant_id")
@tenant_options
@json_option
@pass_scope
def update(scope: Scope, /, tenant_id: str, as_json: bool, **fields: Any) -> None:
    """Change the fields given, keep the others.

    \b
    Example:
      mail-proxy myserver tenants update acme --name "ACME Corp" --inactive
    """
    changes = tenant_fields(fields)
    if not changes:
        raise click.UsageError("nothing to change: give at least one option")
    show_record(dump(scope.client().tenants.update(tenant_id, changes)), as_json, tenant_id)


@tenants.command("delete")
@click.argument("tenant_id")
@force_option
@pass_scope
def delete_tenant(scope: Scope, tenant_id: str, force: bool) -> None:
    """Delete a tenant with its accounts and messages.

    \b
    Example:
      mail-proxy myserver tenants delete acme --force
    """
    confirm(f"Delete tenant {tenant_id!r} with its accounts and messages?", force)
    scope.client().tenants.delete(tenant_id)
    done(f"tenant {tenant_id!r} deleted")
