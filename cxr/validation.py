"""``cxr validate``: the site measures the model against its own radiologists before (and after) going live.

- ``import FILE.csv``: the radiologists' readings, all or nothing;
- ``report --out DIR``: agreement per label and for any abnormality, with intervals and breakdowns;
- ``thresholds --target-sensitivity S``: thresholds chosen on the site's truth, printed as TOML, ``--apply`` to write.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cxr.startup import ConfigOption, console, fail, open_database
from db.enums import ResultMode

if TYPE_CHECKING:
    pass

validate_app = typer.Typer(no_args_is_help=True, help="Measure the model against the site's radiologists.")

ModeOption = Annotated[ResultMode, typer.Option("--mode", help="Shadow results, live results, or all.")]
ResamplesOption = Annotated[int, typer.Option("--bootstrap", min=100, max=100_000, help="Bootstrap resamples.")]


@validate_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV: study_instance_uid[,reader],<label>... or ...,label,value.")],
    config: ConfigOption = None,
) -> None:
    """Import the radiologists' truth: a malformed file is refused whole, with the line at fault."""
    from worker.validation.truth_file import TruthFileError
    from worker.validation.truth_import import import_truth

    _, sessions = open_database(config, "validate")
    try:
        summary = import_truth(sessions, file)
    except TruthFileError as exc:
        raise fail(f"{file.name}: nothing imported", exc) from exc
    for line in summary.lines():
        console.print(line, soft_wrap=True, highlight=False)


@validate_app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for report.md, metrics.json and the plots.")],
    mode: ModeOption = ResultMode.ALL,
    since: Annotated[dt.datetime | None, typer.Option(help="Results finished from (UTC).")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="Results finished before (UTC).")] = None,
    resamples: ResamplesOption = 1000,
    config: ConfigOption = None,
) -> None:
    """Sensitivity, specificity, PPV, NPV and AUROC with 95% intervals, per label and by equipment, view and number
    of positive labels."""
    from worker.validation.agreement_report import NothingToReportError, write_report

    _, sessions = open_database(config, "validate")
    utc = [value.replace(tzinfo=dt.UTC) if value and value.tzinfo is None else value for value in (since, until)]
    try:
        metrics = write_report(sessions, out, mode, utc[0], utc[1], resamples)
    except NothingToReportError as exc:
        raise fail("nothing to report", exc) from exc
    except OSError as exc:
        raise fail(f"cannot write the report into {out}", exc.strerror or type(exc).__name__) from exc
    console.print(
        f"{metrics['studies']['with_truth']} studies with truth, {len(metrics['labels'])} rows: {out / 'report.md'}",
        highlight=False,
    )


@validate_app.command("thresholds")
def thresholds_command(
    target_sensitivity: Annotated[float, typer.Option("--target-sensitivity", min=0.01, max=1.0)],
    label: Annotated[list[str] | None, typer.Option("--label", help="Only this label (repeatable).")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Write them into the --config file (a copy is kept).")] = False,
    mode: ModeOption = ResultMode.ALL,
    resamples: ResamplesOption = 1000,
    config: ConfigOption = None,
) -> None:
    """Choose each label's threshold on the site's truth to reach the target sensitivity."""
    from cxr.startup import load_detector_or_exit
    from models.registry import load_detector
    from worker.context import detector_options
    from worker.validation.agreement_report import NothingToReportError
    from worker.validation.calibration import apply_thresholds, choose_thresholds, thresholds_toml

    if apply and config is None:
        raise fail("--apply", "name the configuration file to change with --config")
    settings, sessions = open_database(config, "validate")
    detector = load_detector_or_exit(lambda: load_detector(settings.detector, detector_options(settings)))
    try:
        recorded, chosen = choose_thresholds(sessions, detector, target_sensitivity, label or (), mode, resamples)
    except NothingToReportError as exc:
        raise fail("nothing to calibrate", exc) from exc
    running = detector.provenance
    if (recorded.version, recorded.weights_sha256) != (running.version, running.weights_sha256):
        raise fail(
            "model mismatch", f"the recorded scores are {recorded.text}'s; the configured model is {running.model_id}"
        )
    for c in chosen:
        e = c.expected
        console.print(
            f"{c.label}: score ≥ {c.score:.4f} on {c.studies} studies: sensitivity {_ci(e['sensitivity'])}, "
            f"specificity {_ci(e['specificity'])}, PPV {_ci(e['ppv'])}",
            highlight=False,
            soft_wrap=True,
        )
    today = dt.datetime.now(dt.UTC).date()
    console.print(thresholds_toml(chosen, running.model_id, today), highlight=False, markup=False)
    if apply and config is not None:
        backup = apply_thresholds(config, chosen, running.model_id, today)
        console.print(f"written to {config}; the old file is {backup.name}. Restart the workers to use them.")


def _ci(value: dict[str, Any]) -> str:
    if value["estimate"] is None:
        return "– (no studies)"
    return f"{value['estimate']:.3f} (95% CI {value['ci_low']:.3f}–{value['ci_high']:.3f})"
