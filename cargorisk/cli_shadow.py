"""``cargorisk shadow set / clear / report``: the shadow challenger.

A version under the alias ``shadow_alias`` (``challenger``) is scored by the service beside
the champion on every request, stored and never served; ``report`` compares the two on the
outcomes that arrived, and ``cargorisk promote --shadow`` takes that comparison into the gate.
"""

from __future__ import annotations

import json

import typer


def shadow_comparison(settings, version: int | None) -> dict:
    """The comparison of challenger ``version`` (default: any) with the champion, from the
    service's store (``settings.store``)."""
    from serving.shadow import compare
    from serving.store import Store

    store = Store(settings.store)
    try:
        pairs = store.shadow_pairs(challenger_version=None if version is None else str(version))
    finally:
        store.close()
    return compare(pairs, settings.capacity).as_dict()


def register(app: typer.Typer) -> None:
    shadow = typer.Typer(
        help="The shadow challenger: scored beside the champion, stored, never served.",
        no_args_is_help=True,
    )
    app.add_typer(shadow, name="shadow")

    @shadow.command("set")
    def shadow_set(version: int = typer.Argument(..., help="Registered version to shadow.")):
        """Make VERSION the challenger (the service picks it up on its next reload)."""
        from common.settings import load_settings
        from training import registry

        settings = load_settings()
        registry.configure(settings)
        registry.set_shadow(settings, version)
        typer.echo(
            f"version {version} is @{settings.shadow_alias}; reload the service "
            "(POST /admin/reload) to start shadow scoring"
        )

    @shadow.command("clear")
    def shadow_clear() -> None:
        """Remove the challenger alias (shadow scoring stops at the next reload)."""
        from common.settings import load_settings
        from training import registry

        settings = load_settings()
        registry.configure(settings)
        previous = registry.clear_shadow(settings)
        typer.echo(
            "no challenger was set"
            if previous is None
            else f"version {previous} is no longer @{settings.shadow_alias}"
        )

    @shadow.command("report")
    def shadow_report(
        version: int | None = typer.Option(None, help="Challenger version (default: any)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Champion and challenger on the shipments both scored, from the store."""
        from common.settings import load_settings

        settings = load_settings()
        result = shadow_comparison(settings, version)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        typer.echo(
            f"{result['shipments']:,} shipments scored by both; {result['inspected']:,} "
            f"inspected, {result['seizures']:,} seizures ({result['random_inspected']} random "
            f"inspections, {result['random_seizures']} seizures)"
        )
        for who in ("champion", "challenger"):
            m = result.get(who)
            if m:
                auc = m["auc_inspected"]
                typer.echo(
                    f"{who:10} v{m['version']:>4}  seizures within capacity "
                    f"{m['seizures_within_capacity']:>4}  inspected within capacity "
                    f"{m['inspected_within_capacity']:>5}/{m['within_capacity']}  AUC inspected "
                    + ("-" if auc is None else f"{auc:.3f}")
                )
        typer.echo(result["verdict"])
        for note in result.get("notes", []):
            typer.echo(f"note: {note}")
