"""``offers``: the offers and requests open before pairings start, and answering them for people."""

from __future__ import annotations

from typing import Any

import click
from coachbridge.cli.app import App, pass_app
from coachbridge.cli.output import emit, format_option
from coachbridge.cli.root import cli
from coachbridge.errors import UserError
from coachbridge.programs import choice

OFFER_COLUMNS = (
    "id",
    "kind",
    "program",
    "learner_id",
    "guide_id",
    "rank",
    "status",
    "expires_at",
    "url",
)


class _ProgramOrCommand(click.Group):
    """``offers [PROGRAM]`` lists; ``offers accept|decline ID`` answers: a first word that is
    no subcommand is the program."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # The group's options that take a value (``--format json``): their value is no word.
        valued = {
            name
            for param in self.params
            if isinstance(param, click.Option) and not param.is_flag
            for name in param.opts
        }
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                break
            if arg.startswith("-"):
                i += 2 if arg in valued else 1
                continue
            if arg not in self.commands:
                args = [*args[:i], "--program", *args[i:]]
            break
        return super().parse_args(ctx, args)


def _offer_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"offer id must be a whole number, not {text!r}") from None
    if value <= 0:
        raise UserError(f"unknown offer id {value}")
    return value


@cli.group(cls=_ProgramOrCommand, invoke_without_command=True)
@click.option("--program", "program_id", hidden=True)
@click.option("--all", "closed", is_flag=True, help="Closed offers and requests too.")
@format_option()
@click.pass_context
def offers(ctx: click.Context, program_id: str | None, closed: bool, fmt: str) -> None:
    """List open offers and requests [of PROGRAM] (and accept or decline them for people).

    \b
    coachbridge offers [PROGRAM] [--all] [--format table|json|csv]
    coachbridge offers accept OFFER_ID
    coachbridge offers decline OFFER_ID [--reason TEXT]
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    assert app is not None
    rows = choice.list_offers(app, program_id, closed=closed)
    emit(
        rows,
        fmt,
        OFFER_COLUMNS,
        table_columns=OFFER_COLUMNS[:-1],
        empty="no open offers or requests" if not closed else "no offers or requests",
    )


def _say(answer: Any) -> None:
    click.echo(f"{answer.kind} {answer.offer_id} {answer.status}: {answer.note}.")


@offers.command("accept")
@click.argument("offer_id", metavar="OFFER_ID")
@pass_app
def offers_accept(app: App, offer_id: str) -> None:
    """Accept an offer (that learner-guide option) or a request, for the person."""
    _say(choice.accept(app, _offer_id(offer_id)))


@offers.command("decline")
@click.argument("offer_id", metavar="OFFER_ID")
@click.option("--reason", help="Why (for the program owner; at most 1000 characters).")
@pass_app
def offers_decline(app: App, offer_id: str, reason: str | None) -> None:
    """Decline an offer or a request, for the person (a declined request re-matches)."""
    _say(choice.decline(app, _offer_id(offer_id), reason=reason))
