"""``connect``: set a connector up from what its source holds."""

from __future__ import annotations

from pathlib import Path

import click
from coachbridge.app import App
from coachbridge.cli.root import cli
from coachbridge.config import DEFAULT_CONFIG_NAME, find_config_path
from coachbridge.errors import UserError
from coachbridge.hris.connect import ConnectRequest, ConnectResult, connect

#: The fields shown for each sample person, and whether one is empty.
_SHOWN = ("email", "job_title", "department", "location", "manager_external_id", "hire_date")


def _secrets(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, var = value.partition("=")
        if not sep or not key.strip() or not var.strip():
            # Not repeated: it may be the secret itself, pasted by mistake.
            raise UserError("--secret: use KEY=ENV_VAR (e.g. client_secret=WORKDAY_CLIENT_SECRET)")
        out[key.strip()] = var.strip()
    return out


def _show(result: ConnectResult) -> None:
    found = result.discovery
    click.echo(f"{found.source}: " + "; ".join(found.notes))
    if found.columns:
        click.echo(
            "found: "
            + ", ".join(
                c.name
                + (f" ({kind})" if (kind := ", ".join(t for t in (c.type, c.note) if t)) else "")
                for c in found.columns
            )
        )
    if found.mapping:
        click.echo("mapping (field <- column, how, confidence):")
        width = max(len(m.field) for m in found.mapping)
        for m in found.mapping:
            if m.column is None:
                click.echo(f"  {m.field:<{width}}    (none found)")
            else:
                click.echo(f"  {m.field:<{width}} <- {m.column}  ({m.how}, {m.confidence:g}%)")
    click.echo(f"first {len(found.samples)} people as they would be synced:")
    for person in found.samples:
        values = person.model_dump()
        name = " ".join(p for p in (person.first_name, person.last_name) if p)
        shown = ", ".join(f"{k}={values[k]}" for k in _SHOWN if values.get(k) not in (None, ""))
        empty = [k for k in _SHOWN if values.get(k) in (None, "")]
        click.echo(
            f"  {person.external_id}  {name}  {shown}"
            + (f"  (empty: {', '.join(empty)})" if empty else "")
        )
    if found.missing:
        click.echo("would be missing:")
        for line in found.missing:
            click.echo(f"  {line}")
    click.echo(f"the table for {result.config_path}:")
    click.echo(result.text.rstrip())


@cli.command(name="connect")
@click.argument("plugin")
@click.argument("name")
@click.option("--tenant", help="Workday: the tenant name.")
@click.option("--host", help="Workday: the services host, e.g. wd5-impl-services1.workday.com.")
@click.option("--base-url", help="Workday or BambooHR: the API's base URL instead of the default.")
@click.option("--report", metavar="OWNER/NAME", help="Workday: the people report.")
@click.option("--company-domain", help="BambooHR: the text before .bamboohr.com.")
@click.option("--people", metavar="FILE", help="CSV: the people file (relative to the config).")
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="KEY=ENV_VAR",
    help="A secret setting and the environment variable that holds it (repeatable); the file "
    "gets ${ENV_VAR}, never the secret.",
)
@click.option("--yes", "-y", is_flag=True, help="Accept the proposed mapping and write it.")
@click.pass_context
def connect_command(
    ctx: click.Context,
    plugin: str,
    name: str,
    tenant: str | None,
    host: str | None,
    base_url: str | None,
    report: str | None,
    company_domain: str | None,
    people: str | None,
    secrets: tuple[str, ...],
    yes: bool,
) -> None:
    """Discover PLUGIN's source, propose a mapping and add [connectors.NAME] to the config.

    Workday: the people report's columns, types and prompts (?xsds). BambooHR: its fields and
    lists (/meta/fields, /meta/lists). CSV: the header row. Every existing line and comment of
    the config file is kept; afterwards `coachbridge check NAME` proves the connection.
    """
    app = ctx.find_object(App)
    assert app is not None
    path = find_config_path(app.config_option) or Path.cwd() / DEFAULT_CONFIG_NAME
    given = {
        "tenant": tenant,
        "host": host,
        "base_url": base_url,
        "report": report,
        "company_domain": company_domain,
        "people": people,
    }
    request = ConnectRequest(
        plugin=plugin,
        name=name,
        config_path=path,
        options={k: v for k, v in given.items() if v is not None},
        secrets=_secrets(secrets),
    )

    def confirm(result: ConnectResult) -> bool:
        _show(result)
        return click.confirm(f"add [connectors.{name}] to {path}?", default=True)

    database, secret_key = None, None
    if path.exists():  # its database keeps a refresh token the vendor rotates while we look
        secret = app.config.server.secret_key
        database = app.database
        secret_key = secret.get_secret_value() if secret is not None else None
    result = connect(
        app.registry.connectors,
        request,
        confirm=None if yes else confirm,
        database=database,
        secret_key=secret_key,
    )
    if yes:
        _show(result)
    if result.written:
        click.echo(f"wrote [connectors.{name}] to {path}; next: coachbridge check {name}")
    else:
        click.echo("nothing written")
