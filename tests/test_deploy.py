"""The cloud deployment as far as it can be proven here, the way it ships: each non-gcloud build
step run as written in a bare Python; each assembled function folder installed from its own
requirements.txt into a fresh virtualenv and served there; the web app installed from
requirements/webapp.in alone into another and started as its Dockerfile does; all of them
wired together in the deployed shape (jobs bucket, finalize events, private HTTP functions)
against the storage emulator."""

import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from packaging.requirements import Requirement

from functions.assemble import assemble, canonical, direct_requirements, pinned_requirements, read_lock
from functions.relay import EventRelay
from shared.params import family
from shared.processes import spawn, stop
from shared.storage import GCSStorage
from tests.browser import wait_healthy
from tests.metadata_server import MetadataServer
from tests.processes import ROOT, free_port, function_env, start_function
from tests.venvs import fresh_venv

pytestmark = pytest.mark.slow
CLOUDBUILD = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
STEPS = {step["id"]: step for step in CLOUDBUILD["steps"]}
HTMX = {"HX-Request": "true"}


def _source_copy(target: Path) -> Path:
    """What `gcloud builds submit` uploads: the repository's tracked files, nothing built."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    return {folder.name: folder for folder in assemble(tmp_path_factory.mktemp("build"))}


@pytest.fixture(scope="module")
def function_python(assembled, tmp_path_factory):
    """One fresh venv per distinct function requirements.txt (today both functions share one)."""
    pythons: dict[str, Path] = {}
    folder = tmp_path_factory.mktemp("function-venvs")
    for name, source in assembled.items():
        requirements = (source / "requirements.txt").read_text()
        if requirements not in pythons:
            pythons[requirements] = fresh_venv(
                folder / name, "-r", str(source / "requirements.txt"), "--no-deps"
            )
    return {name: pythons[(source / "requirements.txt").read_text()] for name, source in assembled.items()}


def _dockerfile() -> dict:
    """The web image's recipe: its pip install arguments, copied folders, environment, command."""
    text = (ROOT / "webapp" / "Dockerfile").read_text()
    install = re.search(r"^RUN pip install (.+)$", text, re.M).group(1).split()
    copies = [line.split()[1] for line in text.splitlines() if line.startswith("COPY ")]
    env = dict(pair.split("=", 1) for pair in re.search(r"^ENV (.+)$", text, re.M).group(1).split())
    command = yaml.safe_load(re.search(r"^CMD (.+)$", text, re.M).group(1))
    return {
        "install": [a for a in install if a != "--no-cache-dir"],
        "copies": copies,
        "env": env,
        "cmd": command,
    }


@pytest.fixture(scope="module")
def web_image(tmp_path_factory):
    """The web app as its container holds it: the Dockerfile's install into a fresh venv, and only
    the folders it copies."""
    recipe = _dockerfile()
    app = tmp_path_factory.mktemp("web-image")
    for folder in recipe["copies"]:
        shutil.copytree(
            ROOT / folder.rstrip("/"), app / folder.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__")
        )
    python = fresh_venv(
        tmp_path_factory.mktemp("web-venv") / "venv", *(a for a in recipe["install"]), cwd=app
    )
    return {"app": app, "python": python, **recipe}


# --- the build config ---------------------------------------------------------------------


def test_cloudbuild_deploys_webapp_and_three_function_entry_points():
    deploys = {step_id: step["args"] for step_id, step in STEPS.items() if step_id.startswith("deploy-")}
    assert set(deploys) == {"deploy-webapp", "deploy-train-http", "deploy-train-event", "deploy-predict"}
    assert "gcloud run deploy" in deploys["deploy-webapp"][-1]
    assert "webapp/Dockerfile" in STEPS["build-webapp"]["args"]
    for step_id in ("deploy-train-http", "deploy-train-event", "deploy-predict"):
        args = deploys[step_id]
        assert args[:2] == ["functions", "deploy"] and "--no-allow-unauthenticated" in args
        assert any(a.startswith("--source=build/functions/") for a in args)
    event = deploys["deploy-train-event"]
    assert "--trigger-event-filters=type=google.cloud.storage.object.v1.finalized" in event
    assert "--entry-point=train_event" in event


def _flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"--{name}=")]
    assert len(values) == 1, (name, args)
    return values[0]


def _env_vars(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(","))


def test_only_the_jobs_bucket_triggers_and_every_job_fits_its_function():
    """The event trigger watches a bucket nothing but job tickets are written to, and each
    function's --timeout is the limit the job code is told (JOB_TIMEOUT_S)."""
    event = STEPS["deploy-train-event"]["args"]
    (trigger_bucket,) = [
        a.split("bucket=", 1)[1] for a in event if a.startswith("--trigger-event-filters=bucket=")
    ]
    web = STEPS["deploy-webapp"]["args"][-1]
    web_env = _env_vars(re.search(r"--set-env-vars=(\S+)", web).group(1))
    assert web_env["TRAIN_TRIGGER"] == "storage" and web_env["JOBS_URL"] == f"gs://{trigger_bucket}"
    for url in (web_env["STORAGE_URL"], web_env["RESULTS_URL"]):
        assert not url.startswith(f"gs://{trigger_bucket}/")
    for step_id, limit in (("deploy-train-event", 540), ("deploy-train-http", 3600), ("deploy-predict", 600)):
        args = STEPS[step_id]["args"]
        assert _flag(args, "timeout") == f"{limit}s"
        assert _env_vars(_flag(args, "set-env-vars"))["JOB_TIMEOUT_S"] == str(limit)
    assert _env_vars(_flag(event, "set-env-vars"))["JOBS_URL"] == f"gs://{trigger_bucket}"
    assert "MAX_UPLOAD_MB" not in web_env  # the cloud default (31) fits Cloud Run's 32 MiB cap


# --- assembly from nothing ----------------------------------------------------------------


def test_assembly_step_runs_as_written_in_a_bare_python(tmp_path):
    """Cloud Build's first step, in a venv with nothing installed (python:3.11-slim has only
    pip): it used to stop with PackageNotFoundError reading installed metadata."""
    source = _source_copy(tmp_path / "workspace")
    python = fresh_venv(tmp_path / "bare")
    step = STEPS["assemble-functions"]
    assert step["name"].startswith("python:3.11") and step["entrypoint"] == "python"
    result = subprocess.run([str(python), *step["args"]], cwd=source, capture_output=True, text=True, env={})
    assert result.returncode == 0, result.stderr
    for function in ("train", "predict"):
        folder = source / "build" / "functions" / function
        assert sorted(p.name for p in folder.iterdir()) == ["main.py", "requirements.txt", "shared"]
        assert (folder / "requirements.txt").read_text() == pinned_requirements()
        assert not (folder / "shared" / "snapshots").exists()


def test_assemble_command_line(tmp_path):
    def assemble_cli(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "functions/assemble.py", *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env={})

    shutil.copytree(ROOT / "functions", tmp_path / "functions")
    shutil.copytree(ROOT / "shared", tmp_path / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    helped = assemble_cli("--help")
    assert helped.returncode == 0 and "usage:" in helped.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "functions",
        "requirements",
        "shared",
    ]  # no "--help"
    (tmp_path / "a-file").write_text("x")
    refused = assemble_cli("a-file")
    assert refused.returncode == 2 and "a-file exists and is not a folder" in refused.stderr
    built = assemble_cli("out")
    assert built.returncode == 0 and built.stdout.split() == ["out/train", "out/predict"]


def test_lock_via_lines_agree_with_what_is_installed():
    """functions/assemble.py walks the lock's `# via` lines; they must say what the installed
    packages' own metadata says (a stale lock would ship a function without a dependency)."""
    seen: set[str] = set()
    todo = direct_requirements(ROOT / "requirements" / "functions.in")
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            for text in metadata.requires(name) or []:
                requirement = Requirement(text)
                if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                    todo.append(canonical(requirement.name))
    pins, _ = read_lock(ROOT / "requirements" / "lock.txt")
    shipped = {canonical(line.split("==")[0]) for line in pinned_requirements().splitlines()[1:]}
    assert shipped == seen
    assert {pins[name] for name in shipped} == set(pinned_requirements().splitlines()[1:])
    assert (
        not {"starlette-testclient", "pytest", "playwright", "ruff", "httpx2", "python-multipart"} & shipped
    )


def test_a_lock_without_a_pin_is_refused_by_name(tmp_path):
    lock = tmp_path / "lock.txt"
    lines = (ROOT / "requirements/lock.txt").read_text().splitlines()
    lock.write_text("\n".join(line for line in lines if not line.startswith("skops==")))
    with pytest.raises(SystemExit, match=r"not pinned in lock.txt: skops \(run 'make lock'\)"):
        pinned_requirements(lock)


# --- what ships, started where it ships ---------------------------------------------------


def _cookie_header(response: httpx.Response, jar: dict[str, str]) -> str:
    """The app's cookies are Secure in cloud mode; over plain HTTP to 127.0.0.1 the test carries
    them by hand, as a browser would over HTTPS."""
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        jar[name] = rest.split(";", 1)[0]
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def _wait_state(client: httpx.Client, path: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(path, headers=HTMX).text
        if 'data-state="succeeded"' in body or 'data-state="failed"' in body:
            return body
        time.sleep(0.5)
    raise AssertionError(f"{path} did not finish:\n{body[-2000:]}")


def test_deployed_shape_from_fresh_venvs(gcs_emulator, assembled, function_python, web_image, tmp_path):
    """Upload-free walk through the deployed shape, every part from its own fresh venv: the web app
    (Dockerfile recipe) writes job tickets to the jobs bucket, a finalize event per ticket runs the
    job in the assembled train function, the predict function serves rows, and its 400 reaches
    the browser as a 400 with its message."""
    bucket, jobs_bucket = gcs_emulator.new_bucket(), gcs_emulator.new_bucket()
    common = {
        "PATH": "/usr/bin:/bin",
        "APP_MODE": "cloud",
        "STORAGE_EMULATOR_HOST": gcs_emulator.url,
        "STORAGE_URL": f"gs://{bucket}/data",
        "RESULTS_URL": f"gs://{bucket}/results",
        "JOBS_URL": f"gs://{jobs_bucket}",
        "COMPUTE_THREADS": "1",
        "HOME": str(tmp_path),
    }

    def serve(function: str, target: str, limit: int, signature: str = "http"):
        folder = assembled[function]
        framework = str(function_python[function].parent / "functions-framework")
        env = {**common, "JOB_TIMEOUT_S": str(limit)}
        return start_function(
            folder / "main.py",
            target,
            env,
            tmp_path,
            signature=signature,
            cwd=folder,
            functions_framework=framework,
        )

    servers = [
        serve("train", "train_event", 540, "cloudevent"),
        serve("train", "train_http", 3600),
        serve("predict", "predict_http", 600),
    ]
    relay = EventRelay(GCSStorage(jobs_bucket), servers[0].url).start()
    metadata_server = MetadataServer().__enter__()
    port = free_port()
    env = {
        **common,
        **web_image["env"],
        **metadata_server.env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SECRET_KEY": "s" * 48,
        "TRAIN_TRIGGER": "storage",
        "TRAIN_URL": servers[1].url,
        "PREDICT_URL": servers[2].url,
    }
    command = [str(web_image["python"]) if a == "python" else a for a in web_image["cmd"]]
    web = spawn(command, cwd=web_image["app"], env=env, log=tmp_path / "web.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/", web, tmp_path / "web.log", timeout=120)
        jar: dict[str, str] = {}
        with httpx.Client(base_url=url, timeout=60) as client:
            first = client.get("/")
            client.headers["Cookie"] = _cookie_header(first, jar)
            client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([0-9a-f]+)"', first.text).group(1)
            started = client.post("/start", data={"dataset": "kepler"})
            client.headers["Cookie"] = _cookie_header(started, jar)
            run_id = re.search(r"/runs/(r[0-9a-f]{32})/", started.headers["location"]).group(1)
            shown = {
                p.name: "" if p.default is None else str(p.default)
                for p in family("logistic_regression").params
            }
            model = {"family": "logistic_regression", **shown, "selection": "none", "strength": "1"}
            assert client.post(f"/runs/{run_id}/model", data=model).status_code == 303
            plan = {"method": "kfold", "folds": "3", "stratified": "on", "group_column": "kepid", "seed": "1"}
            assert client.post(f"/runs/{run_id}/evaluate", data=plan).status_code == 200
            assert 'data-state="succeeded"' in _wait_state(client, f"/runs/{run_id}/jobs/evaluate")
            assert client.post(f"/runs/{run_id}/jobs/final", headers=HTMX).status_code == 200
            assert 'data-state="succeeded"' in _wait_state(client, f"/runs/{run_id}/jobs/final")
            assert sorted(GCSStorage(jobs_bucket).list()) == [
                f"{run_id}/evaluate/1.json",
                f"{run_id}/final/1.json",
            ]
            assert relay.delivered == 2

            trained = json.loads(
                GCSStorage(bucket, "results").read_bytes(f"runs/{run_id}/final/request.json")
            )
            features = trained["spec"]["features"]
            row = {name: "1" for name in features}
            good = client.post(f"/runs/{run_id}/predict/row", data=row, headers=HTMX)
            assert good.status_code == 200 and 'class="predicted' in good.text, good.text[-1500:]
            bad = client.post(f"/runs/{run_id}/predict/row", data={**row, features[0]: "abc"}, headers=HTMX)
            assert bad.status_code == 400, bad.text[-1500:]
            assert features[0] in bad.text and "abc" in bad.text
            # each call carried a Google-signed ID token for the function it went to
            assert set(metadata_server.audiences) == {servers[2].url}
            servers[2].stop()  # the predict function down: a 503 that says to retry, not a 500
            down = client.post(f"/runs/{run_id}/predict/row", data=row, headers=HTMX)
            assert down.status_code == 503 and down.headers["Retry-After"].isdigit()
            assert "did not answer; try again in a minute" in down.text
    finally:
        metadata_server.__exit__()
        relay.stop()
        stop(web)
        for server in servers:
            server.stop()


def test_local_stack_starts_every_part(tmp_path):
    port = free_port()
    out = subprocess.run(
        [sys.executable, "functions/local_stack.py", "--smoke", "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=function_env(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    parts = ("storage", "train", "predict", "web")
    summary = [line.split()[0] for line in out.stdout.splitlines() if line.startswith(parts)]
    assert summary == ["storage", "train", "train", "predict", "web"]


def test_shlex_of_the_assembly_step_is_what_docs_show():
    """docs/deploy.md shows the first build step so it can be run by hand: keep them the same."""
    step = STEPS["assemble-functions"]
    shown = f"{step['entrypoint']} {shlex.join(step['args'])}"
    assert shown in (ROOT / "docs" / "deploy.md").read_text()
