"""CLI commands of the worklist UI: ``users create|list|disable|sessions|sign-out`` (worklist
sign-in accounts and their sessions).

Officers can also sign in to the worklist with an officer API key (``cargorisk keys create
--role officer``); accounts give them a user name and a password instead. Passwords are stored
only as salted scrypt hashes in the serving store.
"""

from __future__ import annotations

import sys

import typer

from features.errors import CargoriskError


def _store():
    from common.settings import load_settings
    from serving.store import Store

    return Store(load_settings().store)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    users = typer.Typer(help="Worklist sign-in accounts (officers, admins).", no_args_is_help=True)
    app.add_typer(users, name="users")

    @users.command("create")
    def users_create(
        username: str = typer.Option(..., "--username", "-u", help="Sign-in name."),
        role: str = typer.Option("officer", "--role", help="officer or admin."),
        password_stdin: bool = typer.Option(
            False, "--password-stdin", help="Read the password from standard input (scripts)."
        ),
    ) -> None:
        """Create a worklist account; asks for the password twice (or reads it from stdin)."""
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        if not password:
            raise CargoriskError("password: empty")
        user_id = _store().create_user(username, password, role)
        typer.echo(f"created {role} {username!r} (id {user_id})")

    @users.command("list")
    def users_list() -> None:
        """List worklist accounts (never their passwords)."""
        rows = _store().list_users()
        typer.echo(f"{'id':>4}  {'username':24} {'role':8} {'created':19}  disabled")
        for r in rows:
            created = r["created_at"].isoformat(sep=" ", timespec="seconds")
            disabled = (
                r["disabled_at"].isoformat(sep=" ", timespec="seconds") if r["disabled_at"] else ""
            )
            typer.echo(
                f"{r['id']:>4}  {r['username'][:24]:24} {r['role']:8} {created:19}  {disabled}"
            )

    @users.command("disable")
    def users_disable(
        username: str = typer.Argument(..., help="The account's user name."),
    ) -> None:
        """Disable an account; its open sessions end at once."""
        if not _store().disable_user(username):
            raise CargoriskError(f"username: no active account {username!r}")
        typer.echo(f"disabled {username!r}")

    @users.command("sessions")
    def users_sessions() -> None:
        """List open worklist sessions (who, from where, since when, last used)."""
        rows = _store().open_sessions()
        typer.echo(f"{'id':>5}  {'who':30} {'client':16} {'since':19}  last used")
        for r in rows:
            since = r["created_at"].isoformat(sep=" ", timespec="seconds")
            seen = r["last_seen_at"].isoformat(sep=" ", timespec="seconds")
            who, client = r["caller"][:30], r["client"] or ""
            typer.echo(f"{r['id']:>5}  {who:30} {client:16} {since:19}  {seen}")

    @users.command("sign-out")
    def users_sign_out(
        username: str = typer.Argument(None, help="End this account's sessions."),
        everyone: bool = typer.Option(False, "--all", help="End every open session."),
    ) -> None:
        """End worklist sessions at once (one account's, or with --all everyone's, API-key
        sessions included); they must sign in again."""
        if (username is None) == (not everyone):
            raise CargoriskError("sign-out: name one account or give --all")
        count = _store().end_sessions(username if not everyone else None)
        typer.echo(f"ended {count} session(s)")
