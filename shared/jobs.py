"""The job code the train function and the embedded worker both run.

``run_job`` claims a requested job with a compare-and-swap on its status (a redelivered or
duplicate trigger finds it claimed and does nothing), reports progress lines and a
heartbeat, writes the outputs, and ends in ``succeeded`` or ``failed`` with a message a
researcher can act on. Tracebacks go to the log, never into the status.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from shared import runs
from shared.bundle import build_metadata, write_bundle
from shared.catalog import BUILTINS
from shared.columns import key_columns, leakage_warnings
from shared.comparison import family_result
from shared.errors import (
    DataError,
    InvalidKey,
    MissionError,
    ObjectNotFound,
    PreconditionFailed,
    SpecError,
    StorageError,
)
from shared.evaluation import evaluate, train_final
from shared.explain import summary as explanation_summary
from shared.figures import evaluation_figures, shap_figure
from shared.job_options import SEARCH_CANDIDATES, SEARCH_MINUTES
from shared.pipeline import with_threshold
from shared.profile import column_kinds
from shared.runs import (
    BATCH,
    BATCH_OUTPUT,
    BUNDLE,
    CANDIDATES,
    EVALUATE,
    FAILED,
    FAMILY_MODES,
    FAMILY_RESULT,
    FINAL,
    LEADERBOARD,
    METRICS,
    OOF,
    QUEUED,
    REPORT,
    REQUEST,
    RUNNING,
    SEARCH,
    SUCCEEDED,
    SUMMARY,
    SVG_TYPE,
    TRANSFER,
    JobRequest,
    Status,
    batch_input_key,
    check_mode,
    check_run_id,
    family_mode,
    figure_name,
    job_key,
    read_output,
    read_status,
    same_model,
    write_status,
)
from shared.scoring import score_rows, to_csv_bytes
from shared.settings import SEARCH_RESERVE_S, Settings
from shared.sources import DatasetInfo, cached_advice, load_info, load_table
from shared.spec import RunSpec
from shared.storage import Storage
from shared.threads import compute_threads
from shared.thresholds import DEFAULT_THRESHOLD, at_threshold

log = logging.getLogger(__name__)
IMPORTANCE_REPEATS = 3
BATCH_LINE_EVERY_S = 1.0
PROGRESS_LINE_EVERY_S = 5.0  # a long phase writes a line at most this often (the heartbeat is apart)
UNEXPECTED = "Training failed unexpectedly; the log has the details. Restart the run to try again."


class JobLost(Exception):
    """Another worker took the job over (the run was restarted); stop quietly."""


class Reporter:
    """Owns a claimed job's status: progress lines and a heartbeat, each a compare-and-swap."""

    def __init__(self, storage: Storage, run_id: str, mode: str, status: Status, generation: int) -> None:
        self.storage, self.run_id, self.mode = storage, run_id, mode
        self.status, self.generation = status, generation
        self.lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name=f"heartbeat-{run_id}")
        self._beat.start()

    def _write(self, status: Status) -> None:
        with self._lock:
            if self.lost:
                raise JobLost
            try:
                self.generation = write_status(self.storage, self.run_id, self.mode, status, self.generation)
            except PreconditionFailed:
                self.lost = True
                raise JobLost from None
            self.status = status

    def line(self, text: str, progress: float | None = None) -> None:
        log.info("%s/%s: %s", self.run_id, self.mode, text)
        self._write(self.status.with_line(text, progress))

    def finish(self, state: str, text: str, message: str = "") -> None:
        self._stop.set()
        self._beat.join()
        status = self.status.with_line(text, 1.0 if state == SUCCEEDED else None)
        self._write(replace(status, state=state, message=message))

    def _heartbeat(self) -> None:
        while not self._stop.wait(runs.HEARTBEAT_S):
            try:
                self._write(replace(self.status, heartbeat=time.time()))
            except JobLost:
                return
            except Exception:  # storage hiccup: the next beat tries again
                log.warning("heartbeat for %s failed", self.run_id, exc_info=True)


@dataclass(frozen=True)
class Job:
    """What every runner gets: the claimed job's spec and options, its storage, its reporter."""

    spec: RunSpec
    run_id: str
    data: Storage
    results: Storage
    reporter: Reporter
    threads: int
    options: dict[str, Any]

    def parts(self) -> tuple[RunSpec, str, Storage, Storage, Reporter, int, dict[str, Any]]:
        return self.spec, self.run_id, self.data, self.results, self.reporter, self.threads, self.options


def _every(seconds: float, call: Callable[..., None]) -> Callable[..., None]:
    """``call``, passed on at most once per ``seconds`` (the first call always)."""
    last = [float("-inf")]

    def throttled(*args: Any) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            call(*args)

    return throttled


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _load_request(storage: Storage, run_id: str, mode: str) -> tuple[JobRequest | None, str]:
    try:
        return JobRequest.from_json(storage.read_bytes(job_key(run_id, mode, REQUEST))), ""
    except ObjectNotFound:
        raise
    except (ValueError, TypeError, KeyError):
        return None, "the job request is not valid JSON with run_id, mode, spec and attempt"


def claim(storage: Storage, run_id: str, mode: str, attempt: int) -> tuple[Status, int] | None:
    """Take a queued job (or one requested without a status, as when a spec is dropped into
    the bucket). None when it is already claimed or done: a duplicate delivery."""
    status, generation = read_status(storage, run_id, mode)
    if status is not None and (
        status.attempt > attempt or (status.attempt == attempt and status.state != QUEUED)
    ):
        return None
    running = Status(RUNNING, attempt=attempt, worker=worker_name()).with_line("Started", 0.01)
    if status is not None:
        running = replace(running, lines=(*status.lines, *running.lines))
    try:
        return running, write_status(storage, run_id, mode, running, generation)
    except PreconditionFailed:
        return None


def run_job(
    run_id: str, mode: str, data: Storage, results: Storage, *, threads: int = 0, time_limit_s: int = 0
) -> Status:
    """Run one requested job to its end; returns the final (or, for a duplicate, current) status.
    ``time_limit_s``: the platform stops this process after that long (a function's timeout):
    a search's budget is cut to end well before it.

    ObjectNotFound if the job was never requested.
    """
    request, problem = _load_request(results, run_id, mode)
    claimed = claim(results, run_id, mode, request.attempt if request else 1)
    if claimed is None:
        current, _ = read_status(results, run_id, mode)
        log.info("%s/%s is already %s; nothing to do", run_id, mode, current.state if current else "?")
        return current
    reporter = Reporter(results, run_id, mode, *claimed)
    try:
        if request is None:
            raise SpecError(problem)
        spec = RunSpec.from_dict(request.spec)
        options = _fit_budget(request.options, time_limit_s, reporter) if mode == SEARCH else request.options
        text = RUNNERS[mode](Job(spec, run_id, data, results, reporter, threads, options))
        reporter.finish(SUCCEEDED, text)
    except JobLost:
        log.warning("%s/%s was taken over by another worker; stopping", run_id, mode)
    except MissionError as error:
        _finish_failed(
            reporter, f"The run's spec is invalid: {error}" if isinstance(error, SpecError) else str(error)
        )
    except Exception:
        log.exception("%s/%s failed", run_id, mode)
        _finish_failed(reporter, UNEXPECTED)
    return reporter.status


def run_requested(
    run_id: object, mode: object, data: Storage, results: Storage, settings: Settings, modes: tuple[str, ...]
) -> tuple[int, dict[str, Any]]:
    """A function's answer to "run this requested job to its end": (HTTP status, JSON body)."""
    try:
        run_id, mode = check_run_id(run_id), check_mode(mode)
    except InvalidKey as error:
        return 400, {"error": str(error)}
    if mode not in modes:
        return 400, {"error": f"this function runs {', '.join(modes)} jobs, not {mode!r}"}
    try:
        status = run_job(
            run_id, mode, data, results, threads=settings.threads, time_limit_s=settings.job_timeout_s
        )
    except ObjectNotFound:
        return 404, {"error": f"run {run_id} has no {mode} job request"}
    return 200, {"run_id": run_id, "mode": mode, "state": status.state, "message": status.message}


def _finish_failed(reporter: Reporter, message: str) -> None:
    with contextlib.suppress(JobLost):
        reporter.finish(FAILED, "Failed", message)


def _dataset(
    spec: RunSpec, data: Storage
) -> tuple[Any, DatasetInfo, dict[str, str], list[str], list[str], list[str]]:
    """The table, its info, column kinds, key columns for outputs, leakage warnings for the
    chosen features, and every column known or detected to leak."""
    info = load_info(data, spec.dataset)
    if info is None:
        raise DataError(f"dataset {spec.dataset!r} is not loaded; load or upload it first")
    frame = load_table(data, spec.dataset)
    builtin = BUILTINS.get(spec.dataset)
    advice = cached_advice(
        data,
        info,
        spec.target,
        spec.label_mapping,
        spec.group_column,
        builtin.known_columns if builtin else None,
    )
    keys = key_columns(advice, builtin.key_columns if builtin else ())
    leaky = [a.name for a in advice if a.leakage]
    return frame, info, column_kinds(info.profiles()), keys, leakage_warnings(spec.features, advice), leaky


def _evaluate(job: Job) -> str:
    spec, run_id, data, results, reporter, threads, _options = job.parts()
    frame, info, kinds, _, warnings, _ = _dataset(spec, data)
    attempt = reporter.status.attempt

    def store(result: Any, figures: list[str] | None) -> dict[str, Any]:
        """metrics.json for this attempt; without figures (None) while they are still to come."""
        metrics = {**result.to_dict(), "spec": spec.to_dict(), "dataset": _describe(info), "attempt": attempt}
        metrics["figures"] = figures if figures is not None else []
        metrics["figures_pending"] = figures is None
        results.write_bytes(
            job_key(run_id, EVALUATE, METRICS),
            json.dumps(metrics).encode(),
            content_type="application/json",
        )
        return metrics

    def show_metrics(result: Any) -> None:  # the folds are done: show what they measured at once
        oof = io.BytesIO()
        result.out_of_fold.to_parquet(oof, index=False)
        results.write_bytes(job_key(run_id, EVALUATE, OOF), oof.getvalue())
        store(result, None)
        reporter.line(runs.METRICS_READY, 0.5)

    started = time.monotonic()
    with compute_threads(threads or None) as cores:
        result = evaluate(
            frame,
            spec,
            kinds,
            n_jobs=cores,
            progress=reporter.line,
            leakage_warnings=warnings,
            importance_repeats=IMPORTANCE_REPEATS if spec.evaluation.importance else 0,
            on_metrics=show_metrics,
        )
    if spec.evaluation.importance:
        reporter.line(f"Feature importance done ({time.monotonic() - started:.0f} s in all)", 0.95)
    else:
        show_metrics(result)
    reporter.line("Drawing the figures", 0.96)
    metrics = {**result.to_dict(), "spec": spec.to_dict(), "dataset": _describe(info)}
    figures = evaluation_figures(metrics, result.out_of_fold)
    for name, svg in figures.items():
        results.write_bytes(job_key(run_id, EVALUATE, figure_name(name)), svg, content_type=SVG_TYPE)
    store(result, sorted(figures))
    headline = result.metrics.get("roc_auc", {}).get("mean")
    return f"Done: ROC-AUC {headline:.3f}" if headline is not None else "Done"


def _final(job: Job) -> str:
    spec, run_id, data, results, reporter, threads, _options = job.parts()
    frame, info, kinds, keys, warnings, leaky = _dataset(spec, data)
    reporter.line(f"Loaded {len(frame):,} rows × {len(spec.features)} features", 0.05)
    reporter.line("Fitting on all rows", 0.1)
    with compute_threads(threads or None) as cores:
        pipe, prepared, notes = train_final(frame, spec, kinds, n_jobs=cores)
    reporter.line(f"Fitted on {len(prepared.labels):,} rows", 0.7)
    reporter.line("Explaining the model on a sample of training rows", 0.72)
    started = time.monotonic()
    shap_summary = explanation_summary(
        pipe,
        prepared.features,
        list(pipe.classes_),
        prepared.positive_class,
        spec.evaluation.seed,
        progress=_every(
            PROGRESS_LINE_EVERY_S,
            lambda done, total: reporter.line(
                f"Explained {done:,} of {total:,} rows", 0.72 + 0.15 * done / total
            ),
        ),
    )
    if shap_summary is not None:
        reporter.line(f"Explanation done in {time.monotonic() - started:.0f} s", 0.87)
    # a binary model decides by the one tie rule (positive at >= 0.5 unless tuned), as its
    # evaluation did; a bare predict() would break ties at exactly 0.5 by class order
    cut = (
        spec.threshold if spec.threshold is not None or prepared.positive_class is None else DEFAULT_THRESHOLD
    )
    pipe = with_threshold(pipe, cut, prepared.positive_class)
    metadata = build_metadata(
        pipe,
        spec,
        prepared,
        kinds,
        run_id=run_id,
        data_sha256=info.table_sha256,
        metrics=_evaluation_of(results, run_id, spec),
        notes=[*notes, *warnings],
    )
    metadata["key_columns"] = [k for k in keys if k in frame.columns and k not in spec.features]
    metadata["threshold"] = spec.threshold
    metadata["at_threshold"] = _at_threshold(results, run_id, metadata["evaluation"], cut)
    metadata["leakage_warnings"] = warnings
    metadata["excluded_leakage"] = [c for c in leaky if c not in spec.features]
    metadata["data_source"] = _describe(info)
    metadata["explanation"] = shap_summary
    figures = _figures_of(results, run_id, metadata["evaluation"])
    if shap_summary is not None:
        figures["shap"] = shap_figure(shap_summary)
        shap_key = job_key(run_id, FINAL, figure_name("shap"))
        results.write_bytes(shap_key, figures["shap"], content_type=SVG_TYPE)
    bundle = write_bundle(pipe, metadata, figures)
    results.write_bytes(job_key(run_id, FINAL, BUNDLE), bundle, content_type="application/zip")
    reporter.line(f"Bundle written, {len(bundle) / 1e6:.1f} MB", 0.9)
    if spec.score_classes:
        ranked = score_rows(pipe, frame, spec, prepared.positive_class or pipe.classes_[-1], keys)
        results.write_bytes(job_key(run_id, FINAL, CANDIDATES), to_csv_bytes(ranked), content_type="text/csv")
        reporter.line(f"Ranked {len(ranked):,} {' and '.join(spec.score_classes)} rows", 0.95)
    summary = {
        "classes": metadata["classes"],
        "features": metadata["features"],
        "kept_features": metadata["kept_features"],
        "training_rows": metadata["training_rows"],
        "bundle_bytes": len(bundle),
        "leakage_warnings": warnings,
        "notes": notes,
        "explanation": shap_summary,
        "figures": sorted(figures),
        "spec": spec.to_dict(),
        "key_columns": metadata["key_columns"],
    }
    results.write_bytes(
        job_key(run_id, FINAL, SUMMARY),
        json.dumps(summary).encode(),
        content_type="application/json",
    )
    return "Done"


def _fit_budget(options: dict[str, Any], time_limit_s: int, reporter: Reporter) -> dict[str, Any]:
    """The search's options with its budget cut to end within this process's time limit (the web
    app already bounds it; this guards a request written by anything else)."""
    minutes = options.get("minutes", SEARCH_MINUTES.default)
    if not time_limit_s or not isinstance(minutes, int | float):
        return options
    most = max(1, (time_limit_s - SEARCH_RESERVE_S) // 60)
    if minutes <= most:
        return options
    reporter.line(
        f"Time budget cut from {minutes:g} to {most} minutes: this function stops after {time_limit_s} s"
    )
    return {**options, "minutes": most}


def _search(job: Job) -> str:
    spec, run_id, data, results, reporter, threads, options = job.parts()
    from shared.search import search

    candidates = options.get("candidates", int(SEARCH_CANDIDATES.default))
    minutes = options.get("minutes", SEARCH_MINUTES.default)
    if not SEARCH_CANDIDATES.allows(candidates):
        raise SpecError(
            f"candidates: {candidates!r} must be a whole number from {SEARCH_CANDIDATES.range_text}"
        )
    # any number in the range: a budget cut to fit a function's limit may be a fraction
    number = isinstance(minutes, int | float) and not isinstance(minutes, bool)
    if not (number and SEARCH_MINUTES.low <= minutes <= SEARCH_MINUTES.high):
        raise SpecError(f"minutes: {minutes!r} must be a number from {SEARCH_MINUTES.range_text}")
    frame, _, kinds, _, _, _ = _dataset(spec, data)
    with compute_threads(threads or None) as cores:
        outcome = search(
            frame, spec, kinds, candidates=candidates, minutes=minutes, n_jobs=cores, progress=reporter.line
        )
    outcome["spec"] = spec.to_dict()
    results.write_bytes(
        job_key(run_id, SEARCH, LEADERBOARD),
        json.dumps(outcome).encode(),
        content_type="application/json",
    )
    best, defaults, metric = outcome["best"]["score"], outcome["defaults_score"], outcome["metric"]
    if defaults is None:
        return (
            f"Done: best {metric} {best:.3f} (the time ran out before the defaults were scored on all rows)"
        )
    if best > defaults:
        return f"Done: best {metric} {best:.3f}, defaults {defaults:.3f}"
    return f"Done: no candidate beat the defaults ({metric} {defaults:.3f})"


def _batch(job: Job) -> str:
    """Predict an uploaded CSV with the run's trained model; the output goes next to it."""
    _spec, run_id, data, results, reporter, threads, options = job.parts()
    from shared.predict import load_model, predict_stored

    token = options.get("token")
    try:
        source = batch_input_key(run_id, token)
    except InvalidKey:
        raise SpecError(f"token: {token!r} does not name an uploaded file") from None
    last = [time.monotonic()]

    def progress(rows: int, share: float) -> None:
        if time.monotonic() - last[0] >= BATCH_LINE_EVERY_S:
            last[0] = time.monotonic()
            reporter.line(f"Predicted {rows:,} rows", 0.02 + 0.93 * share)

    try:
        bundle = load_model(results, run_id)
        reporter.line("Reading the file and predicting", 0.02)
        with compute_threads(threads or None):
            output, rows = predict_stored(bundle, data, source, progress)
    except Exception:
        with contextlib.suppress(StorageError):
            data.delete(source)  # a file that cannot be predicted is not kept
        raise
    record = {"token": token, "input": source, "output": output, "rows": rows}
    results.write_bytes(
        job_key(run_id, BATCH, BATCH_OUTPUT), json.dumps(record).encode(), content_type="application/json"
    )
    _delete_older(data, f"uploads/{run_id}/", source, output)  # the page offers the latest only
    return f"Done: {rows:,} rows predicted"


def _delete_older(data: Storage, prefix: str, source: str, output: str) -> None:
    """Delete what was stored under ``prefix`` before ``source``: earlier batches, and inputs
    whose job never ran or died before it could delete them (a newer upload is left alone)."""
    listed = data.generations(prefix)
    ours = listed.get(source)
    for key, generation in listed.items():
        if ours is not None and generation < ours and key not in (source, output):
            with contextlib.suppress(StorageError):
                data.delete(key, if_generation_match=generation)


def _evaluation_of(results: Storage, run_id: str, spec: RunSpec) -> dict[str, Any] | None:
    """The run's evaluation metrics, if it evaluated this spec (the decision threshold aside:
    choosing it on the evaluation's predictions changes no probability)."""
    metrics = read_output(results, run_id, EVALUATE, METRICS)
    if metrics is None:
        return None
    return metrics if same_model(metrics.get("spec"), spec.to_dict()) else None


def _at_threshold(
    results: Storage, run_id: str, evaluation: dict[str, Any] | None, threshold: float | None
) -> dict[str, float] | None:
    """Scores of a binary model at the threshold it decides by, on the evaluation's pooled
    out-of-fold predictions (the evaluation's own means are at 0.5)."""
    positive = (evaluation or {}).get("positive_class")
    if positive is None or threshold is None:
        return None
    oof = pd.read_parquet(io.BytesIO(results.read_bytes(job_key(run_id, EVALUATE, OOF))))
    truth = (oof["true"] == positive).to_numpy()
    return at_threshold(truth, oof[f"proba_{positive}"].to_numpy(), threshold).to_dict()


def _figures_of(results: Storage, run_id: str, evaluation: dict[str, Any] | None) -> dict[str, bytes]:
    """The stored evaluation figures, only if the evaluation is of this model."""
    if not evaluation:
        return {}
    return {
        name: results.read_bytes(job_key(run_id, EVALUATE, figure_name(name)))
        for name in evaluation.get("figures", [])
    }


def _describe(info: DatasetInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "source": info.source_label,
        "fetched_at": info.fetched_at,
        "rows": info.rows,
        "table_sha256": info.table_sha256,
    }


def _family(job: Job) -> str:
    """One family's part in a comparison: the run's evaluation plan and splits with this
    family's model (the request's spec already holds it). One thread: the comparison's
    parallelism is its families running side by side, each in a process of its own."""
    spec, run_id, data, results, reporter, _threads, _options = job.parts()
    frame, _info, kinds, _, warnings, _ = _dataset(spec, data)
    started = time.monotonic()
    with compute_threads(1):
        result = evaluate(frame, spec, kinds, n_jobs=1, progress=reporter.line, leakage_warnings=warnings)
    record = family_result(spec.model.family, spec, result.to_dict(), time.monotonic() - started)
    results.write_bytes(
        job_key(run_id, family_mode(spec.model.family), FAMILY_RESULT),
        json.dumps(record).encode(),
        content_type="application/json",
    )
    headline = record["metrics"].get("roc_auc", {}).get("mean")
    return f"Done: ROC-AUC {headline:.3f}" if headline is not None else "Done"


def _transfer(job: Job) -> str:
    """Across missions: options name the training missions and the test mission; the report,
    the ranked unsettled rows of the test mission and a bundle of the transferred model."""
    spec, run_id, data, results, reporter, threads, options = job.parts()
    from shared.missions import mission_names
    from shared.transfer import transfer

    train, test = mission_names(options.get("train"), options.get("test"))
    frames, shas = {}, []
    for mission in (*train, test):
        info = load_info(data, mission)
        if info is None:
            raise DataError(f"dataset {mission!r} is not loaded; open it on the datasets page first")
        frames[mission] = load_table(data, mission)
        shas.append(info.table_sha256)
    with compute_threads(threads or None) as cores:
        report, model, ranked, train_spec, prepared = transfer(
            frames, train, test, spec, n_jobs=cores, progress=reporter.line
        )
    shift = {
        "train": " + ".join(BUILTINS[m].name for m in train), "test": BUILTINS[test].name,
        "transfer": report["transfer"]["roc_auc"]["mean"], "own_test": report["own_test"]["roc_auc"]["mean"],
        "own_train": report["own_train"]["roc_auc"]["mean"],
    }  # fmt: skip
    units = ", ".join(f"{k} [{u}]" for k, u in report["units"].items())
    metadata = build_metadata(
        model, train_spec, prepared, dict.fromkeys(train_spec.features, "numeric"), run_id=run_id,
        data_sha256=hashlib.sha256("".join(shas).encode()).hexdigest(),
        notes=[f"Features in the missions' common vocabulary: {units}"],
    )  # fmt: skip
    metadata["mission_shift"] = shift
    metadata["key_columns"] = []
    bundle = write_bundle(model, metadata)
    results.write_bytes(job_key(run_id, TRANSFER, BUNDLE), bundle, content_type="application/zip")
    caveat = (
        f"# Ranked by a model trained on {shift['train']}, not on {shift['test']}: on {shift['test']}'s "
        f"settled rows it scores ROC-AUC {shift['transfer']:.3f}, against {shift['own_test']:.3f} for "
        f"{shift['test']}'s own grouped cross-validation on the same features.\n"
    )
    results.write_bytes(
        job_key(run_id, TRANSFER, CANDIDATES), caveat.encode() + to_csv_bytes(ranked), content_type="text/csv"
    )
    results.write_bytes(
        job_key(run_id, TRANSFER, REPORT), json.dumps(report).encode(), content_type="application/json"
    )
    return f"Done: ROC-AUC {shift['transfer']:.3f} on {test} (its own {shift['own_test']:.3f})"


# The job types' runners (titles and outputs: shared.runs.JOB_TYPES), one signature for all.
RUNNERS: dict[str, Callable[..., str]] = {
    EVALUATE: _evaluate,
    FINAL: _final,
    SEARCH: _search,
    BATCH: _batch,
    TRANSFER: _transfer,
    **dict.fromkeys(FAMILY_MODES, _family),
}
