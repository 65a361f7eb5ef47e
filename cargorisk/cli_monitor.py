"""``cargorisk monitor``: drift of the traffic the service scored against the model's training
reference - a text report, ``--json``, and heat-map plots logged to the model's MLflow run.

It wires the serving store (what was scored) and the registry (the model and its reference);
the computation is the service's own (:mod:`serving.drift`, over :mod:`features.drift`).
"""

from __future__ import annotations

import json

import typer


def _model_run(settings, uri: str) -> tuple[str, str]:
    """(version, run id) of a model URI (``models:/name@alias``, ``models:/name/N``,
    ``runs:/<run>/model``)."""
    import mlflow

    client = mlflow.MlflowClient()
    body = uri.split(":/", 1)[1].lstrip("/")
    if uri.startswith("runs:"):
        return "-", body.split("/", 1)[0]
    name, _, rest = body.partition("/")
    if "@" in name:
        name, alias = name.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        mv = client.get_model_version(name, rest)
    return str(mv.version), mv.run_id or ""


def _text(report, weeks: int, top: int) -> str:
    from features.drift import SCORE

    lines = [
        f"model version  {report.model_version}",
        f"served         {report.served:,} scored shipments in the last {weeks} ISO weeks",
    ]
    if report.reference_window:
        ref = report.reference_window
        lines.append(f"reference      training window {ref.get('from')} .. {ref.get('to')}")
    if report.window_from is not None:
        lines.append(
            f"window         {report.window_from:%Y-%m-%d} .. {report.window_to:%Y-%m-%d} "
            "(the /metrics gauges)"
        )
    t = report.thresholds
    lines.append(
        f"thresholds     PSI warn {t.psi_warn:g} alert {t.psi_alert:g}; unknown to the model "
        f"+{t.unseen_alert:.0%}; missing +{t.missing_alert:.0%} (points over training)"
    )
    lines.append("")
    if not report.alerts:
        lines.append("alerts         none")
    else:
        lines.append(f"alerts ({len(report.alerts)}):")
        for a in report.alerts:
            lines.append(f"  {a['level']:5}  {a['stream']:8} {a['feature']:40} {a['why']}")
    for stream in sorted(set(report.window["stream"])):
        part = report.window[report.window["stream"] == stream]
        score = part[part["feature"] == SCORE]
        rest = part[part["feature"] != SCORE].sort_values("psi", ascending=False).head(top)
        lines.append("")
        lines.append(
            f"{stream}: {int(part['rows'].max()):,} shipments in the window; the score and the "
            f"{len(rest)} most drifted features"
        )
        lines.append(f"  {'feature':40} {'PSI':>7} {'missing':>8} {'train':>7} {'unseen':>7}")
        for r in [*score.itertuples(index=False), *rest.itertuples(index=False)]:
            psi = "-" if r.psi != r.psi else f"{r.psi:.3f}"
            unseen = "-" if r.unseen_share != r.unseen_share else f"{r.unseen_share:.1%}"
            lines.append(
                f"  {r.feature:40} {psi:>7} {r.missing_share:>8.1%} "
                f"{r.missing_reference:>7.1%} {unseen:>7}  {r.level}"
            )
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def monitor(
        model: str | None = typer.Option(
            None, "--model", help="Version number, alias or model URI (default: the champion)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
        weeks: int | None = typer.Option(
            None, "--weeks", min=1, help="ISO weeks of served traffic (default: drift_weeks)."
        ),
        window_days: int | None = typer.Option(
            None, "--window-days", min=1, help="Days of the current window (drift_window_days)."
        ),
        top: int = typer.Option(10, "--top", min=1, help="Features listed per stream."),
        log_plots: bool = typer.Option(
            True, "--log/--no-log", help="Log the heat maps and the JSON to the model's run."
        ),
        fail_on_alert: bool = typer.Option(
            False, "--fail-on-alert", help="Exit with status 3 when any feature alarms."
        ),
    ) -> None:
        """Drift of the served traffic (the store) against the model's training reference,
        per stream and ISO week: PSI, unseen categories, missing values; plots logged to the
        model's MLflow run."""
        import matplotlib.pyplot as plt
        import mlflow
        import pandas as pd

        from common.settings import engine_options, load_settings
        from features import registry_contract as rc
        from features.errors import CargoriskError
        from serving.drift import heatmap_figure, measure, served_features
        from serving.store import Store
        from training import registry

        overrides = {}
        if weeks is not None:
            overrides["drift_weeks"] = weeks
        if window_days is not None:
            overrides["drift_window_days"] = window_days
        settings = load_settings(**overrides)
        registry.configure(settings)
        uri = registry.resolve_model_uri(settings, model)
        scoring, reference = registry.load_drift_reference(uri)
        if not reference:
            raise CargoriskError(
                f"{uri} was logged without a drift reference (trained before references were "
                "recorded); retrain it to monitor drift"
            )
        version, run_id = _model_run(settings, uri)
        store = Store(settings.store)
        try:
            features = served_features(
                store, scoring, weeks=settings.drift_weeks, engine=engine_options(settings)
            )
        finally:
            store.close()
        report = measure(
            features,
            scoring,
            reference,
            thresholds=settings.drift_thresholds,
            window_days=settings.drift_window_days,
            model_version=version,
        )
        body = report.as_dict()
        if log_plots and run_id and report.served:
            client = mlflow.MlflowClient()
            folder = f"{rc.MONITOR_PLOTS}/{pd.Timestamp(report.computed_at):%Y-%m-%dT%H%M%S}"
            for stream in sorted(set(report.weeks["stream"])):
                fig = heatmap_figure(report.weeks, stream, report.thresholds)
                client.log_figure(run_id, fig, f"{folder}/drift_heat_{stream}.png")
                plt.close(fig)
            client.log_dict(run_id, body, f"{folder}/drift.json")
            body["logged_to"] = {"run_id": run_id, "folder": folder}
        if as_json:
            typer.echo(json.dumps(body, indent=1, default=str))
        else:
            typer.echo(_text(report, settings.drift_weeks, top))
            if "logged_to" in body:
                typer.echo("")
                typer.echo(f"plots          run {run_id}: {body['logged_to']['folder']}/")
        if fail_on_alert and any(a["level"] == "alert" for a in report.alerts):
            raise typer.Exit(3)
