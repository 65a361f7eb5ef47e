"""``cargorisk train / evaluate / promote / models / score``: the data scientist's commands.

Heavy libraries (pandas, LightGBM, MLflow) are imported inside the command bodies.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer


def _progress(message: str) -> None:
    typer.echo(message, err=True)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"
    return str(value)


_ENGINE_HELP = (
    "What computes the point-in-time features: pandas (numpy), duckdb or spark "
    "(default: setting feature_engine)."
)
_MASTER_HELP = "Spark master for --engine spark: local[N] or a cluster URL (default: setting)."


def _settings(engine: str | None, spark_master: str | None = None):
    """The settings in force, with ``--engine`` and ``--spark-master`` overriding
    ``feature_engine`` and ``spark_master``."""
    from common.settings import load_settings
    from features.engine import ENGINES

    overrides = {}
    if engine is not None:
        if engine not in ENGINES:
            raise typer.BadParameter(f"must be one of {', '.join(ENGINES)}", param_hint="--engine")
        overrides["feature_engine"] = engine
    if spark_master is not None:
        overrides["spark_master"] = spark_master
    return load_settings(**overrides)


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""

    @app.command()
    def train(
        data: Path = typer.Option(..., "--data", help="Directory of contract tables."),
        experiment: str | None = typer.Option(None, help="MLflow experiment (default setting)."),
        valid_from: str | None = typer.Option(None, help="First day of validation (YYYY-MM-DD)."),
        test_from: str | None = typer.Option(None, help="First day of the test (YYYY-MM-DD)."),
        test_days: int | None = typer.Option(None, help="Test = the last N days (validation N)."),
        config: Path | None = typer.Option(None, "--config", help="Hyper-parameters YAML."),
        no_register: bool = typer.Option(False, help="Log the run without registering."),
        label_name: str | None = typer.Option(
            None,
            "--label-name",
            help="What a positive label means (e.g. 'duty fraud'); default: dataset.json.",
        ),
        label_positive: str | None = typer.Option(
            None,
            "--label-positive",
            help="Noun for one positive result (default '<label name> finding').",
        ),
        tune: str | None = typer.Option(
            None, "--tune", help="Search hyper-parameters with Optuna for a time: 90s, 10m, 1h."
        ),
        tune_trials: int | None = typer.Option(
            None, "--tune-trials", help="At most N tuning trials (reproducible searches)."
        ),
        engine: str | None = typer.Option(None, "--engine", help=_ENGINE_HELP),
        spark_master: str | None = typer.Option(None, "--spark-master", help=_MASTER_HELP),
    ) -> None:
        """Train on DIR, measure against the baselines, log to MLflow, register a version.

        Every run fits the full model (feature families selected on validation) and a
        raw-columns challenger; the better on validation is registered."""
        from features.registry_contract import capacity_metric
        from training.jobs.train import train_job
        from training.report import format_table, plural, summary_rows

        settings = _settings(engine, spark_master)
        result = train_job(
            settings,
            data,
            experiment=experiment,
            valid_from=valid_from,
            test_from=test_from,
            test_days=test_days,
            config_path=config,
            register=not no_register,
            label_name=label_name,
            label_positive=label_positive,
            tune=tune,
            tune_trials=tune_trials,
            progress=_progress,
        )
        meta = result.model.metadata
        m = result.metrics
        positives = plural(meta["dataset"]["label"]["positive"])
        typer.echo("")
        typer.echo(
            f"label          {meta['dataset']['label']['name']} (positive = "
            f"{meta['dataset']['label']['positive']})"
        )
        typer.echo(
            f"test period {meta['test_period']['from'][:10]} .. {meta['test_period']['to'][:10]}"
            f"  labelled rows {int(m['test_n_rows']):,}"
            f"  {positives} {int(m['test_n_positive']):,}"
            f"  base rate {m['test_base_rate']:.4f}"
        )
        typer.echo(format_table(summary_rows(m), ("metric", "model", "rules", "random")))
        fitted = result.fitted
        cap = f"{settings.capacity * 100:g}%"
        if fitted is not None:
            typer.echo("")
            rows = []
            for who, prefix in (("full model", "full"), ("raw challenger", "challenger")):
                key = capacity_metric("precision", settings.capacity, prefix)
                if key in m:
                    rows.append(
                        (
                            who,
                            _fmt(m[f"valid_{key}"]),
                            _fmt(m[f"valid_{prefix}_pr_auc"]),
                            _fmt(m[key]),
                            _fmt(m[f"{prefix}_pr_auc"]),
                        )
                    )
            header = ("candidate", f"valid prec@{cap}", "valid PR-AUC", f"test prec@{cap}")
            typer.echo(format_table(rows, (*header, "test PR-AUC")))
            if fitted.selection is not None:
                typer.echo("")
                typer.echo(f"feature families (validation precision@{cap} / PR-AUC):")
                typer.echo(
                    format_table(fitted.selection.rows(), ("family", "with", "without", "decision"))
                )
            typer.echo("")
            typer.echo(f"registered     {meta['kind']} (families {', '.join(meta['families'])})")
            typer.echo(f"why            {fitted.why}")
            tuned = f", {len(fitted.tuning.trials)} tuning trials" if fitted.tuning else ""
            typer.echo(f"fits           {fitted.fits} LightGBM fits{tuned}")
            if meta.get("best_round_at_cap"):
                typer.echo(
                    f"warning        best round {meta['best_iteration']} is at the round cap: "
                    "early stopping did not act (raise num_boost_round)"
                )
        typer.echo("")
        typer.echo(f"run id         {result.run_id}")
        version = result.model_version if result.model_version is not None else "not registered"
        typer.echo(f"model          {settings.model_name} version {version}")
        typer.echo(f"tracking       {settings.tracking_uri}")
        typer.echo(f"time           {result.timings['total_s']:.1f} s")
        if result.model_version is not None:
            typer.echo(f"next           cargorisk promote --version {result.model_version}")

    @app.command()
    def evaluate(
        data: Path = typer.Option(..., "--data", help="Directory of contract tables."),
        model: str | None = typer.Option(
            None, "--model", help="Model URI, version number or alias (default: champion)."
        ),
        start: str | None = typer.Option(None, "--from", help="First declaration day scored."),
        end: str | None = typer.Option(None, "--to", help="Last declaration time scored."),
        as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
        engine: str | None = typer.Option(None, "--engine", help=_ENGINE_HELP),
        spark_master: str | None = typer.Option(None, "--spark-master", help=_MASTER_HELP),
    ) -> None:
        """Score a registered model on any data and print the metrics beside the baselines."""
        from training.jobs.evaluate import evaluate_job
        from training.registry import resolve_model_uri
        from training.report import format_table, summary_rows

        settings = _settings(engine, spark_master)
        uri = resolve_model_uri(settings, model)
        result = evaluate_job(settings, uri, data, start=start, end=end, progress=_progress)
        if as_json:
            typer.echo(json.dumps(result, indent=1, default=str))
            return
        m = result["metrics"]
        typer.echo(
            f"{uri} on {result['period']['from'][:10]} .. {result['period']['to'][:10]}"
            f"  labelled rows {int(m['test_n_rows']):,}  seizures {int(m['test_n_positive']):,}"
        )
        if result["overlaps_training"]:
            typer.echo("warning: this period overlaps the model's training window (in-sample)")
        typer.echo(format_table(summary_rows(m), ("metric", "model", "rules", "random")))

    @app.command()
    def promote(
        version: int | None = typer.Option(None, help="Candidate version (default: latest)."),
        data: Path | None = typer.Option(
            None, "--data", help="Data directory (default: the one the candidate trained on)."
        ),
        force: bool = typer.Option(False, help="Promote even if the gate refuses."),
        reason: str | None = typer.Option(None, help="Why the gate is overridden (with --force)."),
        config: Path | None = typer.Option(None, "--config", help="Hyper-parameters/gate YAML."),
        engine: str | None = typer.Option(None, "--engine", help=_ENGINE_HELP),
        spark_master: str | None = typer.Option(None, "--spark-master", help=_MASTER_HELP),
        shadow: bool = typer.Option(
            False,
            "--shadow",
            help="Also require the live evidence of shadow scoring (the candidate as the "
            "challenger, compared with the champion on the outcomes in the store).",
        ),
    ) -> None:
        """Move the champion alias to a version if it beats the champion on the same period."""
        from training.jobs.promote import promote_job

        settings = _settings(engine, spark_master)
        evidence = None
        if shadow:
            from cargorisk.cli_shadow import shadow_comparison
            from training import registry

            registry.configure(settings)
            evidence = shadow_comparison(settings, version or registry.latest_version(settings))
        record = promote_job(
            settings,
            version=version,
            data_dir=data,
            force=force,
            reason=reason,
            config_path=config,
            progress=_progress,
            shadow=evidence,
        )
        cap = f"@{settings.capacity:.0%}"
        for who in ("candidate", "champion", "rules"):
            m = record.get(f"{who}_metrics")
            if m:
                typer.echo(
                    f"{who:10} precision{cap} {_fmt(m['precision_at_capacity'])}"
                    f"  recall{cap} {_fmt(m['recall_at_capacity'])}  PR-AUC {_fmt(m['pr_auc'])}"
                )
        if "period" in record:
            typer.echo(
                f"compared on {record['rows']:,} labelled shipments ({record['seizures']} "
                f"positive) of {record['period']['from'][:10]} .. {record['period']['to'][:10]}"
            )
            if record.get("evidence") == "little":
                typer.echo(
                    f"evidence: little ({record['seizures']} positive < gate.min_seizures "
                    f"{record['min_seizures']}): decided on intervals, not point estimates"
                )
        if record.get("champion_in_sample"):
            typer.echo("note: the champion was trained on part of this period (in-sample)")
        typer.echo(f"gate: {record.get('gate_reason', record.get('reason'))}")
        if record["promoted"]:
            forced = " (forced: " + record["force_reason"] + ")" if record.get("forced") else ""
            typer.echo(
                f"promoted version {record['candidate']} to @{settings.champion_alias}{forced}"
            )
        else:
            typer.echo(f"version {record['candidate']} NOT promoted")
            raise typer.Exit(1)

    @app.command()
    def models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List registered versions with their aliases and test metrics."""
        from common.settings import load_settings
        from features import registry_contract as rc
        from training import registry
        from training.report import format_table

        settings = load_settings()
        registry.configure(settings)
        versions = registry.list_versions(settings)
        cap = settings.capacity
        if as_json:
            typer.echo(json.dumps([v.__dict__ for v in versions], indent=1, default=str))
            return
        if not versions:
            typer.echo(f"no registered version of {settings.model_name} ({settings.tracking_uri})")
            return
        rows = []
        for v in versions:
            m = v.metrics
            gate = json.loads(v.tags[rc.VERSION_TAG_GATE]) if rc.VERSION_TAG_GATE in v.tags else {}
            rows.append(
                (
                    str(v.version),
                    ",".join(v.aliases) or "-",
                    v.params.get("kind", "-"),
                    v.created.strftime("%Y-%m-%d %H:%M"),
                    v.params.get("test_from", "-")[:10],
                    _fmt(m.get(rc.capacity_metric("precision", cap, "test"))),
                    _fmt(m.get(rc.capacity_metric("precision", cap, "rules"))),
                    _fmt(m.get(rc.capacity_metric("lift", 0.01, "test"))),
                    _fmt(m.get("test_pr_auc")),
                    _fmt(m.get(rc.capacity_metric("true_recall", cap, "test"))),
                    "forced"
                    if gate.get("forced")
                    else ("passed" if gate.get("gate_passed") else ("refused" if gate else "-")),
                )
            )
        header = (
            "version",
            "aliases",
            "kind",
            "created",
            "test from",
            f"prec@{cap * 100:g}%",
            f"rules@{cap * 100:g}%",
            "lift@1%",
            "PR-AUC",
            f"true rec@{cap * 100:g}%",
            "gate",
        )
        typer.echo(format_table(rows, header))

    @app.command()
    def score(
        input: Path = typer.Option(..., "--input", help="Shipments file (.csv or .parquet)."),
        output: Path = typer.Option(..., "--output", help="Scores file (.csv or .parquet)."),
        model: str | None = typer.Option(
            None, "--model", help="Model URI, version number or alias (default: champion)."
        ),
        explain_top: float | None = typer.Option(
            None, "--explain-top", help="Reasons for the top P % (default: setting)."
        ),
        mapping: Path | None = typer.Option(
            None,
            "--mapping",
            help="Ingest mapping YAML for a file in its own column names (labelled or not).",
        ),
        history: Path | None = typer.Option(
            None, "--history", help="Data directory with the entities' past shipments/outcomes."
        ),
        delimiter: str = typer.Option(",", "--delimiter", help="CSV delimiter (with --mapping)."),
        encoding: str = typer.Option("utf-8", "--encoding", help="CSV encoding (with --mapping)."),
        engine: str | None = typer.Option(None, "--engine", help=_ENGINE_HELP),
        spark_master: str | None = typer.Option(None, "--spark-master", help=_MASTER_HELP),
    ) -> None:
        """Batch-score a file of shipments, with reasons for the top-ranked. With --mapping the
        file is read exactly as `cargorisk ingest` reads it (same mapping, delimiter, encoding;
        rows that cannot be scored are set aside in <output>.rejected.csv with their reasons)."""
        from training.jobs.score import score_job
        from training.registry import resolve_model_uri

        settings = _settings(engine, spark_master)
        uri = resolve_model_uri(settings, model)
        top = 100 * settings.explain_top_share if explain_top is None else explain_top
        with tempfile.TemporaryDirectory(prefix="cargorisk-score-") as tmp:
            rejected = 0
            if mapping is not None:
                input, rejected = _ingest_for_scoring(
                    input, mapping, output, Path(tmp), delimiter, encoding
                )
            result = score_job(
                settings,
                uri,
                input,
                output,
                explain_top=top,
                history_dir=history,
                progress=_progress,
            )
        typer.echo(
            f"scored {result['scored']:,} shipments with {uri} -> {result['output']} "
            f"(high {result['high']}, medium {result['medium']}, reasons for {result['explained']}"
            f"{', rejected ' + str(rejected) if rejected else ''})"
        )
        if not result["history"]:
            typer.echo(
                "note: no --history given; history and network features see only this file",
                err=True,
            )


def _ingest_for_scoring(
    source: Path, mapping: Path, output: Path, work: Path, delimiter: str, encoding: str
) -> tuple[Path, int]:
    """Read ``source`` in its own column names through the ingest path into ``work``; set the
    rows that cannot be scored and the values left blank aside next to ``output``. Returns the
    contract file to score and the number of rows set aside."""
    import shutil

    from cargorisk.ingestion import delimiter_option, run_ingest
    from features.ingest.mapping import read_mapping

    summary = run_ingest(
        source,
        read_mapping(mapping),
        work,
        delimiter=delimiter_option(delimiter),
        encoding=encoding,
    )
    counts = {"quarantine": summary.quarantined, "blanked": sum(summary.blanked.values())}
    words = {"quarantine": "row(s) set aside", "blanked": "value(s) left blank"}
    for kind, suffix in (("quarantine", "rejected"), ("blanked", "blanked")):
        target = output.with_name(f"{output.stem}.{suffix}.csv")
        if counts[kind]:
            shutil.copyfile(summary.outputs[kind], target)
            _progress(f"{counts[kind]:,} {words[kind]}; reasons in {target}")
        else:
            target.unlink(missing_ok=True)
    return Path(summary.outputs["shipments"]), summary.quarantined
