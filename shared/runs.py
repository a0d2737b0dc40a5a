"""A run's life, all in storage: spec, job requests, status with progress lines, outputs.

Layout under the results storage::

    runs/<run id>/spec.json                 the wizard's current spec (draft)
    runs/<run id>/<mode>/request.json       a job request: the spec snapshot and attempt number
    runs/<run id>/<mode>/status.json        queued → running → succeeded | failed, with progress
    runs/<run id>/evaluate/metrics.json     evaluate outputs (and oof.parquet)
    runs/<run id>/final/bundle.zip          final outputs (and summary.json, candidates.csv)
    runs/<run id>/batch/output.json         the last batch prediction: input, output, rows

Writing a request is what starts a job: the storage-finalize event on ``request.json``
triggers the train function in the cloud; locally the web app hands it to a worker.
Every status change is a compare-and-swap on the status object's generation, so a
redelivered trigger never runs a job twice and a dead worker's run can be restarted.

A queued or running job whose status has shown no sign of life for ``STALE_AFTER_S`` seconds
is presumed dead (stalled) and may be restarted; its worker writes a heartbeat every
``HEARTBEAT_S``. ``JOB_STALE_AFTER_S`` in the environment sets the window (read once, at import).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from shared.errors import CorruptObject, InvalidKey, ObjectNotFound, PreconditionFailed, SpecError
from shared.params import FAMILIES
from shared.settings import JOB_STALE_AFTER_S
from shared.spec import RunSpec
from shared.storage import Storage

log = logging.getLogger("shared.runs")
EVALUATE = "evaluate"
FINAL = "final"
SEARCH = "search"
BATCH = "batch"  # predicting an uploaded CSV with the run's trained model
TRANSFER = "transfer"  # across missions: train on one survey, test and score on another
FAMILY_PREFIX = "family-"  # one model family's cross-validation in a comparison of families
FAMILY_MODES = tuple(f"{FAMILY_PREFIX}{key}" for key in FAMILIES)
MODES = (EVALUATE, FINAL, SEARCH, BATCH, TRANSFER, *FAMILY_MODES)
METRICS_READY = "Metrics ready"  # an evaluation's line once metrics.json holds this attempt's metrics
# What a job keeps under runs/<run id>/<mode>/: each name written here once
REQUEST, STATUS = "request.json", "status.json"
METRICS, OOF = "metrics.json", "oof.parquet"  # an evaluation
LEADERBOARD = "leaderboard.json"  # a search
SUMMARY, BUNDLE, CANDIDATES = "summary.json", "bundle.zip", "candidates.csv"  # training on all data
BATCH_OUTPUT = "output.json"  # a batch prediction
FAMILY_RESULT = "family.json"  # one family's part of a comparison
COMPARISON = "comparison.json"  # under the run: which families were compared, and when
REPORT = "report.json"  # across missions (with its bundle.zip and candidates.csv)


@dataclass(frozen=True)
class JobType:
    """One kind of job: its title, and the output its status fragment shows once it is done
    (under ``shown_as`` in the fragment's context)."""

    title: str
    result: str
    shown_as: str


JOB_TYPES = {
    EVALUATE: JobType("Evaluation", METRICS, "metrics"),
    FINAL: JobType("Training on all data", SUMMARY, "summary"),
    SEARCH: JobType("Hyperparameter search", LEADERBOARD, "leaderboard"),
    BATCH: JobType("Batch prediction", BATCH_OUTPUT, "batch"),
    TRANSFER: JobType("Across missions", REPORT, "report"),
    **{f"{FAMILY_PREFIX}{key}": JobType(f"{f.name} in the comparison", FAMILY_RESULT, "family")
       for key, f in FAMILIES.items()},
}  # fmt: skip
TITLES = {mode: job.title for mode, job in JOB_TYPES.items()}
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


STALE_AFTER_S = JOB_STALE_AFTER_S  # a job without a sign of life for this long is presumed dead
HEARTBEAT_S = min(10.0, STALE_AFTER_S / 5)
RUN_ID = re.compile(r"r[0-9a-f]{32}")
TICKET_NAME = re.compile(rf"(r[0-9a-f]{{32}})/({'|'.join(MODES)})/([1-9][0-9]{{0,5}})\.json")


def new_run_id() -> str:
    return "r" + secrets.token_hex(16)


def check_run_id(run_id: str) -> str:
    """Run ids are server-generated; anything else is refused before it touches storage."""
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidKey(f"not a run id: {run_id!r}")
    return run_id


def family_mode(key: str) -> str:
    """The job mode of one family's part in a comparison (InvalidKey for an unknown family)."""
    return check_mode(f"{FAMILY_PREFIX}{key}")


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidKey(f"not a job mode: {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def run_key(run_id: str, name: str) -> str:
    return f"runs/{check_run_id(run_id)}/{name}"


def job_key(run_id: str, mode: str, name: str) -> str:
    return run_key(run_id, f"{check_mode(mode)}/{name}")


SVG_TYPE = "image/svg+xml"


def figure_name(name: str) -> str:
    """A figure's object name within a job's folder (names come from shared.figures.TITLES)."""
    return f"figures/{name}.svg"


BATCH_TOKEN = re.compile(r"[0-9a-f]{24}")  # names an uploaded file to predict: server-made


def batch_input_key(run_id: str, token: object) -> str:
    """Where an uploaded CSV to predict is stored, in the data storage; InvalidKey for anything
    but a server-made token."""
    if not isinstance(token, str) or not BATCH_TOKEN.fullmatch(token):
        raise InvalidKey(f"not an upload token: {token!r}")
    return f"uploads/{check_run_id(run_id)}/{token}.csv"


def ticket_key(run_id: str, mode: str, attempt: int) -> str:
    """A job's ticket in the jobs bucket (TRAIN_TRIGGER=storage): writing it is what starts the
    job, as that bucket's finalize event invokes the train function. One object per attempt."""
    return f"{check_run_id(run_id)}/{check_mode(mode)}/{int(attempt)}.json"


def parse_ticket_name(name: str) -> tuple[str, str] | None:
    """(run id, mode) if an object name is a job ticket, else None."""
    match = TICKET_NAME.fullmatch(name)
    return (match.group(1), match.group(2)) if match else None


def _worker_alive(worker: str) -> bool:
    """False only for a worker ("host:pid") on this machine whose process no longer exists.
    Not asked on Google Cloud (K_SERVICE is set there), where sandboxes may share a host name."""
    host, _, pid = worker.rpartition(":")
    if "K_SERVICE" in os.environ or host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user
        return True
    return True


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- the draft spec -----------------------------------------------------------------------


def save_spec(storage: Storage, run_id: str, spec: Mapping[str, Any]) -> int:
    """Store the wizard's draft (a dict: it may be incomplete while the user works)."""
    return storage.write_bytes(
        run_key(run_id, "spec.json"), json.dumps(spec).encode(), content_type="application/json"
    )


def load_spec(storage: Storage, run_id: str) -> dict[str, Any]:
    key = run_key(run_id, "spec.json")
    return _json_object(storage.read_bytes(key), storage.uri(key))


def _json_object(data: bytes, where: str) -> dict[str, Any]:
    """A stored JSON document, which must be one whole object: CorruptObject if it is cut short
    (or is anything else), never a half-read value."""
    try:
        value = json.loads(data)
    except ValueError as exc:  # also UnicodeDecodeError
        raise CorruptObject(f"{where} is damaged: not a complete JSON document ({exc})") from None
    if not isinstance(value, dict):
        raise CorruptObject(f"{where} is damaged: expected a JSON object, found {type(value).__name__}")
    return value


def _parsed(parse: Any, data: bytes, where: str) -> Any:
    """``parse(data)`` for a stored record, with a damaged one reported as CorruptObject."""
    _json_object(data, where)
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptObject(f"{where} is damaged: {exc}") from None


# --- status ---------------------------------------------------------------------------------


DAMAGED_STATUS = "This job's status record is damaged; Restart to run it again."


@dataclass(frozen=True)
class Status:
    state: str
    attempt: int = 1
    progress: float = 0.0
    lines: tuple[tuple[str, str], ...] = ()  # (ISO time, text)
    message: str = ""  # failure message a researcher can act on
    heartbeat: float = field(default_factory=time.time)
    worker: str = ""
    # read from a damaged record (see read_status): shown as failed, never written as such
    damaged: bool = field(default=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)

    @property
    def stale(self) -> bool:
        """Running (or queued) without a sign of life for too long: the worker died. A worker
        process of this machine that is gone is known dead at once (the embedded worker, the
        local stack); one elsewhere (a function instance) only by its silence."""
        if self.state not in (QUEUED, RUNNING):
            return False
        return time.time() - self.heartbeat > STALE_AFTER_S or (
            self.state == RUNNING and not _worker_alive(self.worker)
        )

    def with_line(self, text: str, progress: float | None = None) -> Status:
        return replace(
            self,
            lines=(*self.lines, (now_iso(), text)),
            progress=self.progress if progress is None else progress,
            heartbeat=time.time(),
        )

    def to_json(self) -> bytes:
        data = asdict(self)
        del data["damaged"]
        data["lines"] = [list(line) for line in self.lines]
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Status:
        """A stored status, every field checked: ValueError for anything a status is not."""
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, found {type(raw).__name__}")
        unknown = sorted(set(raw) - _STATUS_FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {', '.join(unknown)}")
        if raw.get("state") not in (QUEUED, RUNNING, SUCCEEDED, FAILED):
            raise ValueError(
                f"state {raw.get('state')!r} is not one of {QUEUED}, {RUNNING}, {SUCCEEDED}, {FAILED}"
            )
        attempt = raw.get("attempt", 1)
        if not _whole(attempt) or attempt < 1:
            raise ValueError(f"attempt {attempt!r} is not a whole number from 1")
        for name in ("progress", "heartbeat"):
            if name in raw and not _number(raw[name]):
                raise ValueError(f"{name} {raw[name]!r} is not a number")
        for name in ("message", "worker"):
            if not isinstance(raw.get(name, ""), str):
                raise ValueError(f"{name} is not text")
        lines = raw.get("lines", [])
        if not isinstance(lines, list) or not all(
            isinstance(line, list) and len(line) == 2 and all(isinstance(part, str) for part in line)
            for line in lines
        ):
            raise ValueError("lines are not a list of [time, text] pairs")
        raw["lines"] = tuple(tuple(line) for line in lines)
        return cls(**raw)


_STATUS_FIELDS = frozenset({"state", "attempt", "progress", "lines", "message", "heartbeat", "worker"})


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_status(storage: Storage, run_id: str, mode: str) -> tuple[Status | None, int]:
    """The job's status and its generation (None, 0 when the job was never requested).

    A damaged status record (cut short, not JSON, wrong fields) is read as a failed status
    marked ``damaged``, with its real generation: the job shows as failed with a message saying
    so, a worker leaves it alone, and a restart replaces it by a compare-and-swap.
    """
    key = job_key(run_id, mode, STATUS)
    try:
        data, generation = storage.read_with_generation(key)
    except ObjectNotFound:
        return None, 0
    try:
        return _parsed(Status.from_json, data, storage.uri(key)), generation
    except CorruptObject as error:
        log.error("%s; read as a damaged, failed job", error)
        return _damaged_status(storage, run_id, mode, data), generation


def _damaged_status(storage: Storage, run_id: str, mode: str, data: bytes) -> Status:
    """What a damaged status record stands for: a failed job, at the attempt its request names
    (else the record's own, if it still says one), so a restart takes the next number."""
    attempt = None
    try:
        attempt = read_request(storage, run_id, mode).attempt
    except (ObjectNotFound, CorruptObject):
        with contextlib.suppress(ValueError, AttributeError):  # not JSON, or not an object
            attempt = json.loads(data).get("attempt")
    if not _whole(attempt) or attempt < 1:
        attempt = 1
    return Status(FAILED, attempt=attempt, message=DAMAGED_STATUS, heartbeat=0.0, damaged=True)


def write_status(storage: Storage, run_id: str, mode: str, status: Status, generation: int) -> int:
    """Compare-and-swap: PreconditionFailed if the status changed since ``generation``."""
    return storage.write_bytes(
        job_key(run_id, mode, STATUS),
        status.to_json(),
        content_type="application/json",
        if_generation_match=generation,
    )


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRequest:
    run_id: str
    mode: str
    spec: dict[str, Any]
    attempt: int
    requested_at: str
    options: dict[str, Any] = field(default_factory=dict)  # e.g. a search's budget

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> JobRequest:
        return cls(**json.loads(data))


class JobConflict(Exception):
    """The job is already queued or running (or finished, for a plain request)."""


def request_job(
    storage: Storage,
    run_id: str,
    mode: str,
    spec: RunSpec,
    *,
    restart: bool = False,
    options: Mapping[str, Any] | None = None,
) -> JobRequest:
    """Queue a job. The status is claimed first (compare-and-swap), then the request written:
    of two clicks at once, one wins and the other gets JobConflict.

    A new request is refused while the job is queued or running and alive; ``restart`` also
    allows replacing a finished job (re-evaluate after changing the spec) or one whose status
    record is damaged (overwritten under the damaged record's generation, like any other).
    """
    status, generation = read_status(storage, run_id, mode)
    if status is not None and status.damaged and not restart:
        raise JobConflict(f"the {mode} job's status record is damaged; restart it to run it again")
    if status is not None and not status.stale and not (restart and status.finished):
        raise JobConflict(f"the {mode} job of this run is already {status.state}")
    attempt = 1 if status is None else status.attempt + 1
    queued = Status(QUEUED, attempt=attempt).with_line("Queued", 0.0)
    try:
        write_status(storage, run_id, mode, queued, generation)
    except PreconditionFailed:
        raise JobConflict(f"the {mode} job of this run was just started elsewhere") from None
    request = JobRequest(run_id, mode, spec.to_dict(), attempt, now_iso(), dict(options or {}))
    storage.write_bytes(job_key(run_id, mode, REQUEST), request.to_json(), content_type="application/json")
    return request


def fail_unclaimed(storage: Storage, run_id: str, mode: str, attempt: int, message: str) -> bool:
    """Mark a job failed with ``message`` if it is still queued at ``attempt``: nothing took it
    (its function refused it or could not be called). False when a worker got to it first."""
    status, generation = read_status(storage, run_id, mode)
    if status is None or status.state != QUEUED or status.attempt != attempt:
        return False
    failed = replace(status.with_line("Failed"), state=FAILED, message=message)
    try:
        write_status(storage, run_id, mode, failed, generation)
    except PreconditionFailed:
        return False
    return True


def read_output(storage: Storage, run_id: str, mode: str, name: str) -> dict[str, Any] | None:
    """A job's JSON output (metrics, leaderboard, summary, batch output, request), or None if it
    was never written; CorruptObject naming it if it is damaged."""
    key = job_key(run_id, mode, name)
    try:
        data = storage.read_bytes(key)
    except ObjectNotFound:
        return None
    return _json_object(data, storage.uri(key))


def read_request(storage: Storage, run_id: str, mode: str) -> JobRequest:
    key = job_key(run_id, mode, REQUEST)
    return _parsed(JobRequest.from_json, storage.read_bytes(key), storage.uri(key))


# --- ownership and history --------------------------------------------------------------------

WORKSPACE_ID = re.compile(r"w[0-9a-f]{32}")


def new_workspace_id() -> str:
    return "w" + secrets.token_hex(16)


@dataclass(frozen=True)
class RunMeta:
    """Who a run belongs to and what it is about, for the history page."""

    workspace: str
    dataset: str
    dataset_name: str
    created: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RunMeta:
        return cls(**json.loads(data))


def create_run(
    storage: Storage, workspace: str, dataset: str, dataset_name: str, spec: Mapping[str, Any]
) -> str:
    """A new run with its draft spec, owned by ``workspace`` and listed in its history."""
    if not WORKSPACE_ID.fullmatch(workspace):
        raise InvalidKey(f"not a workspace id: {workspace!r}")
    run_id = new_run_id()
    meta = RunMeta(workspace, dataset, dataset_name, now_iso())
    storage.create(run_key(run_id, "meta.json"), meta.to_json(), content_type="application/json")
    save_spec(storage, run_id, spec)
    storage.create(workspace_run_key(workspace, run_id), b"", content_type="text/plain")
    return run_id


class DamagedRun(CorruptObject):
    """A run's own record (meta.json) is damaged: whose run it is cannot be read."""

    def __init__(self, run_id: str, message: str) -> None:
        super().__init__(message)
        self.run_id = run_id


def load_meta(storage: Storage, run_id: str) -> RunMeta:
    """The run's meta; ObjectNotFound if there is no such run, DamagedRun if it is damaged."""
    key = run_key(run_id, "meta.json")
    data = storage.read_bytes(key)
    try:
        meta = _parsed(RunMeta.from_json, data, storage.uri(key))
        if not all(isinstance(getattr(meta, name), str) for name in RunMeta.__dataclass_fields__):
            raise CorruptObject(f"{storage.uri(key)} is damaged: a field is not text")
    except CorruptObject as error:
        raise DamagedRun(run_id, str(error)) from None
    return meta


def workspace_run_key(workspace: str, run_id: str) -> str:
    """The empty object that lists a run in its workspace (written when the run is made)."""
    if not WORKSPACE_ID.fullmatch(workspace):
        raise InvalidKey(f"not a workspace id: {workspace!r}")
    return f"workspaces/{workspace}/runs/{check_run_id(run_id)}"


def workspace_runs(storage: Storage, workspace: str) -> list[str]:
    """The workspace's run ids, newest first."""
    listed = storage.generations(f"workspaces/{workspace}/runs/")
    return [key.rsplit("/", 1)[1] for key, _ in sorted(listed.items(), key=lambda kv: kv[1], reverse=True)]


def update_spec(storage: Storage, run_id: str, change: Any) -> dict[str, Any]:
    """Read-modify-write the draft spec with a compare-and-swap, retrying on a concurrent edit.

    ``change`` takes the spec dict and returns the new one (or raises to abort).
    """
    for _ in range(10):
        data, generation = storage.read_with_generation(run_key(run_id, "spec.json"))
        updated = change(_json_object(data, storage.uri(run_key(run_id, "spec.json"))))
        try:
            storage.write_bytes(
                run_key(run_id, "spec.json"),
                json.dumps(updated).encode(),
                content_type="application/json",
                if_generation_match=generation,
            )
            return updated
        except PreconditionFailed:
            continue
    raise PreconditionFailed(f"run {run_id}'s settings kept changing; try again")


def same_model(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Whether two spec dicts train the same model: the decision threshold aside, which is
    chosen on the evaluation's predictions and changes no probability."""
    if a is None or b is None:
        return False
    return {**a, "threshold": None} == {**b, "threshold": None}


def made_with_draft(made_with: Mapping[str, Any] | None, draft: Mapping[str, Any]) -> bool:
    """Whether results made with the spec ``made_with`` describe the run's draft spec as it is
    now (an incomplete draft describes no results)."""
    try:
        current = RunSpec.from_dict(dict(draft)).to_dict()
    except SpecError:
        return False
    return same_model(made_with, current)
