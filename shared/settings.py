"""Settings read once from the environment into typed values, shared by web app and functions.

The original app's variables keep working: ``UPLOAD_DIR``/``GCS_BUCKET`` map onto
``STORAGE_URL``, ``MODEL_DIR``/``RESULTS_BUCKET`` onto ``RESULTS_URL``, and
``FLASK_SECRET_KEY`` onto ``SECRET_KEY``. A new name wins over its old one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import MissionError

EMBEDDED = "embedded"
CLOUD = "cloud"
DEFAULT_STORAGE_URL = "var/storage"
DEFAULT_ARCHIVE_TAP_URL = "https://exoplanetarchive.ipac.caltech.edu/TAP/sync"
# Google's caps on one invocation of a 2nd-gen function: an event-driven one is stopped after
# 540 s, an HTTP one after 3,600 s (cloudbuild.yaml deploys each with its cap as --timeout)
EVENT_FUNCTION_LIMIT_S = 540
HTTP_FUNCTION_LIMIT_S = 3600
SEARCH_RESERVE_S = 120  # what a search job spends around its time budget: loading, storing
# Cloud Run refuses an HTTP/1 request over 32 MiB before it reaches the app: an upload's file
# must leave room for the form around it
CLOUD_REQUEST_CAP_MB = 32
CLOUD_MAX_UPLOAD_MB = CLOUD_REQUEST_CAP_MB - 1


class SettingsError(MissionError, ValueError):
    """An environment variable has a value we cannot use."""


def seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """A number of seconds from ``low`` to ``high`` (inclusive), or SettingsError naming it."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r}: expected a number of seconds from {low:g} to {high:g}")
    return value


# Read once at import, as typed constants, for code that runs without a Settings object at hand
# (a status's staleness, the storage client's retries); Settings carries the same values.
# A job without a sign of life for this long is presumed dead (its heartbeat stays well inside).
JOB_STALE_AFTER_S = seconds(os.environ, "JOB_STALE_AFTER_S", 90.0, 1, 24 * 3600)
# How long one storage operation keeps retrying a refusing or failing server before it gives up:
# short, for the web app; a deployment may give its functions longer.
STORAGE_RETRY_S = seconds(os.environ, "STORAGE_RETRY_S", 5.0, 0.1, 3599)


@dataclass(frozen=True)
class Settings:
    mode: str = EMBEDDED
    storage_url: str = DEFAULT_STORAGE_URL
    results_url: str = ""  # empty: the same as storage_url
    max_upload_mb: int = 50
    max_import_mb: int = 200  # a table already in storage under imports/ (no request cap applies)
    secret_key: str | None = None
    dataset_uris: Mapping[str, str] = field(default_factory=dict)
    archive_tap_url: str = DEFAULT_ARCHIVE_TAP_URL
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 0  # 0: use every core the process may run on
    compare_workers: int = 0  # embedded: processes comparing families side by side (0: one per core)
    train_trigger: str = "embedded"  # embedded | http | storage
    train_url: str | None = None
    predict_url: str | None = None
    access_token: str | None = None  # a shared password for a public deployment (ACCESS_TOKEN)
    web_threads: int = 40  # the web app's thread pool, where every storage call and page runs
    job_stale_after_s: float = JOB_STALE_AFTER_S
    storage_retry_s: float = STORAGE_RETRY_S
    jobs_url: str | None = None  # TRAIN_TRIGGER=storage: a bucket of its own for job tickets
    job_timeout_s: int = 0  # in a function: its --timeout, which a job must end within (0: none)

    def __post_init__(self) -> None:
        if not self.results_url:  # runs live beside the data unless told otherwise
            object.__setattr__(self, "results_url", self.storage_url)

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(*names: str) -> str | None:
            for name in names:
                value = env.get(name, "").strip()
                if value:
                    return value
            return None

        mode = get("APP_MODE") or EMBEDDED
        if mode not in (EMBEDDED, CLOUD):
            raise SettingsError(f"APP_MODE={mode!r}: expected {EMBEDDED!r} or {CLOUD!r}")
        max_upload_mb = _positive_int(env, "MAX_UPLOAD_MB", CLOUD_MAX_UPLOAD_MB if mode == CLOUD else 50)
        if mode == CLOUD and max_upload_mb > CLOUD_MAX_UPLOAD_MB:
            raise SettingsError(
                f"MAX_UPLOAD_MB={max_upload_mb}: Cloud Run refuses requests over {CLOUD_REQUEST_CAP_MB} MiB "
                f"before they reach the app; use at most {CLOUD_MAX_UPLOAD_MB} (bigger tables are "
                "imported from the bucket's imports/ folder, see docs/deploy.md)"
            )
        storage_url = (
            get("STORAGE_URL") or _bucket_url(get("GCS_BUCKET")) or get("UPLOAD_DIR") or DEFAULT_STORAGE_URL
        )
        results_url = (
            get("RESULTS_URL") or _bucket_url(get("RESULTS_BUCKET")) or get("MODEL_DIR") or storage_url
        )
        trigger = _train_trigger(get("TRAIN_TRIGGER"), mode, get("TRAIN_URL"))
        uris = {
            key: value
            for key, var in (("kepler", "KEPLER_URI"), ("k2", "K2_URI"), ("tess", "TESS_URI"))
            if (value := get(var))
        }
        return cls(
            mode=mode,
            storage_url=storage_url,
            results_url=results_url,
            max_upload_mb=max_upload_mb,
            max_import_mb=_positive_int(env, "MAX_IMPORT_MB", 200),
            secret_key=get("SECRET_KEY", "FLASK_SECRET_KEY"),
            dataset_uris=uris,
            archive_tap_url=get("ARCHIVE_TAP_URL") or DEFAULT_ARCHIVE_TAP_URL,
            host=get("HOST") or "127.0.0.1",
            port=_positive_int(env, "PORT", 8000),
            threads=_positive_int(env, "COMPUTE_THREADS", 0, allow_zero=True),
            compare_workers=_positive_int(env, "COMPARE_WORKERS", 0, allow_zero=True),
            train_trigger=trigger,
            train_url=get("TRAIN_URL"),
            predict_url=get("PREDICT_URL"),
            access_token=get("ACCESS_TOKEN", "APP_PASSWORD"),
            web_threads=_positive_int(env, "WEB_THREADS", 40),
            job_stale_after_s=seconds(env, "JOB_STALE_AFTER_S", 90.0, 1, 24 * 3600),
            storage_retry_s=seconds(env, "STORAGE_RETRY_S", 5.0, 0.1, 3599),
            jobs_url=_jobs_url(get("JOBS_URL"), storage_url, results_url),
            job_timeout_s=_positive_int(env, "JOB_TIMEOUT_S", 0, allow_zero=True),
        )

    @property
    def search_minutes_max(self) -> int:
        """The longest search budget this deployment can finish: a job started by a storage
        event must end within the event function's cap (with time to load the data and store
        the leaderboard), unless long jobs can go to the HTTP function."""
        if self.train_trigger == "storage" and not self.train_url:
            return (EVENT_FUNCTION_LIMIT_S - SEARCH_RESERVE_S) // 60
        if self.train_trigger in ("storage", "http"):
            return min(60, (HTTP_FUNCTION_LIMIT_S - SEARCH_RESERVE_S) // 60)
        return 60

    @property
    def search_minutes_reason(self) -> str:
        """Why searches are bounded by less than an hour here (empty when they are not)."""
        if self.search_minutes_max >= 60:
            return ""
        if self.train_trigger == "storage" and not self.train_url:
            return (
                f"jobs here start from a storage event, and Google stops such a function after "
                f"{EVENT_FUNCTION_LIMIT_S} s; with TRAIN_URL set, longer searches go to the HTTP function"
            )
        return f"Google stops an HTTP function after {HTTP_FUNCTION_LIMIT_S} s"


def _train_trigger(value: str | None, mode: str, train_url: str | None) -> str:
    """How the web app starts a job: a local worker process, an HTTP call to the train
    function, or nothing but the request written to storage (its finalize event triggers)."""
    trigger = value or ("http" if train_url else "storage" if mode == CLOUD else "embedded")
    if trigger not in ("embedded", "http", "storage"):
        raise SettingsError(f"TRAIN_TRIGGER={trigger!r}: expected 'embedded', 'http' or 'storage'")
    if trigger == "http" and not train_url:
        raise SettingsError("TRAIN_TRIGGER=http needs TRAIN_URL, the train function's address")
    return trigger


def _jobs_url(value: str | None, storage_url: str, results_url: str) -> str | None:
    """A storage trigger fires for every object written to its bucket: job tickets get a bucket of
    their own, so status heartbeats, outputs and uploads start nothing (the web app refuses
    TRAIN_TRIGGER=storage without one)."""
    if value is None:
        return None
    bucket = _bucket_name(value)
    if bucket is not None and bucket in (_bucket_name(storage_url), _bucket_name(results_url)):
        raise SettingsError(
            f"JOBS_URL={value}: must be a bucket of its own, not the data or results bucket: "
            "its trigger would fire for every status update and output"
        )
    return value


def _bucket_name(url: str) -> str | None:
    return url.removeprefix("gs://").split("/", 1)[0] if url.startswith("gs://") else None


def _bucket_url(value: str | None) -> str | None:
    """The original app took a bare bucket name (GCS_BUCKET) or a gs:// URL (RESULTS_BUCKET)."""
    if value is None:
        return None
    return value if value.startswith("gs://") else f"gs://{value.strip('/')}"


def _positive_int(env: Mapping[str, str], name: str, default: int, *, allow_zero: bool = False) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a whole number") from None
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{name}={raw!r}: expected a positive number")
    return value
