"""Prefect as a researcher who does not write code sees it: the run form, the artifacts on
the run they triggered (with paths to copy), a password that never shows, the task runner
in run.json, a Dask cluster that leaves port 8787 alone, and the run page in a browser."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

# Prefect reads these when it is imported: a throw-away PREFECT_HOME, no analytics,
# and room for the temporary API server to start on this slow machine.
_OWN_PREFECT_HOME = None
if "PREFECT_HOME" not in os.environ:
    _OWN_PREFECT_HOME = tempfile.mkdtemp(prefix="textmine-prefect-")
    os.environ["PREFECT_HOME"] = _OWN_PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

from flows.mine_corpus import (  # noqa: E402
    DASK_DASHBOARD_ADDRESS,
    DaskParameters,
    TopicParameters,
    make_task_runner,
    mine_corpus,
)
from flows.watch_publications import watch_publications  # noqa: E402
from tests.test_pipeline import SMALL_CORPUS, make_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LOCKED_PDF = REPO / "tests" / "data" / "ingest" / "password-example.pdf"
LOCKED_PDF_PASSWORD = "test"  # tests/test_ingest_read.py reads it with this password
STAGES = ["ingest", "code", "trends", "export"]  # topics and figures have their own tests


@pytest.fixture(scope="module")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
    if _OWN_PREFECT_HOME:
        shutil.rmtree(_OWN_PREFECT_HOME, ignore_errors=True)


# --------------------------------------------------------------------------- the form


def _schema(flow) -> dict:
    from prefect.utilities.callables import parameter_schema

    return parameter_schema(flow.fn).model_dump()


@pytest.mark.parametrize("flow", [mine_corpus, watch_publications], ids=lambda f: f.name)
def test_every_form_field_is_a_plain_typed_input_with_help(flow):
    schema = _schema(flow)
    fields = dict(schema["properties"])
    for model in schema.get("definitions", {}).values():
        fields.update({f"{model['title']}.{k}": v for k, v in model["properties"].items()})
    for name, field in fields.items():
        if "$ref" in field:  # a group of fields (topics, dask): its fields are checked too
            assert field.get("description"), name
            continue
        # one type per field: no "auto"-or-number unions, no None toggles, no constants
        assert field.get("type") in {"string", "integer", "boolean", "array"}, (name, field)
        assert not {"anyOf", "oneOf", "const"} & set(field), (name, field)
        assert "default" in field and field["default"] is not None, name
        assert len(field.get("description", "")) > 20, name
        assert field["title"] == name.rsplit(".", 1)[-1], name  # one naming style throughout
    assert "password" not in schema["properties"]


def test_watch_publications_passes_the_pool_size_on():
    import inspect

    assert _schema(watch_publications)["properties"]["max_workers"]["default"] == 0
    assert "max_workers=max_workers" in inspect.getsource(watch_publications.fn)


def test_topic_and_dask_fields_take_their_plain_values():
    assert TopicParameters().run_n_topics() == "auto"
    assert TopicParameters(n_topics="auto").n_topics == 0  # what older deployments sent
    assert TopicParameters(n_topics=12).run_n_topics() == 12
    with pytest.raises(ValueError, match="at least 2"):
        TopicParameters(n_topics=1)
    assert DaskParameters(address=None).address == ""


# --------------------------------------------------------------------------- a run


def _artifacts_of(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


@pytest.mark.slow
def test_the_triggered_run_carries_summary_tables_and_paths(prefect_api, tmp_path):
    from prefect.blocks.system import Secret
    from prefect.client.orchestration import get_client

    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:2])
    shutil.copy(LOCKED_PDF, corpus / "locked.pdf")
    Secret(value=LOCKED_PDF_PASSWORD).save("textmine-test-pdf-password", overwrite=True)
    out = tmp_path / "out"
    state = mine_corpus(
        corpus_paths=[str(corpus)],
        out_dir=str(out),
        coder="rules",
        stages=STAGES,
        pdf_password_secret="textmine-test-pdf-password",
        return_state=True,
    )
    assert state.is_completed()
    result = state.result()
    assert result["counts"]["documents_read"] == 3 and result["failures"] == []

    flow_run_id = state.state_details.flow_run_id
    artifacts = _artifacts_of(flow_run_id)
    assert {
        "textmine-run-summary",
        "textmine-documents-by-type-and-year",
        "textmine-output-report",
        "textmine-output-coded-sentences",
    } <= set(artifacts)
    folder = out.resolve()
    summary = artifacts["textmine-run-summary"].data
    assert f"Output folder: `{folder}`" in summary
    assert f"`{folder / 'report.html'}`" in summary and (folder / "report.html").is_file()
    assert f"`{folder / 'coded_sentences.csv'}`" in summary
    assert str(folder / "report.html") in artifacts["textmine-output-report"].data
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        every_summary = client.read_artifacts()
        owners = {a.flow_run_id for a in every_summary if a.key == "textmine-run-summary"}
        names = {client.read_flow_run(i).flow_id for i in owners}
        flows = {client.read_flow(i).name for i in names}
    assert flows == {"mine-corpus"}  # never on the mine-corpus-batches child run
    # the password is read from the Secret block; the run's parameters hold only its name
    assert run.parameters["pdf_password_secret"] == "textmine-test-pdf-password"
    assert LOCKED_PDF_PASSWORD not in {str(v) for v in run.parameters.values()}
    # run.json names the task runner, as the runs table does
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["settings"]["task_runner"] == "thread"
    assert record["settings"]["password"] == "***"


@pytest.mark.slow
def test_local_dask_cluster_leaves_port_8787_alone():
    import psutil

    def listening_ports() -> set[int]:
        me = psutil.Process()
        ports = set()
        for process in [me, *me.children(recursive=True)]:
            ports |= {
                c.laddr.port
                for c in process.net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
        return ports

    before = listening_ports()
    runner = make_task_runner("dask", DaskParameters(n_workers=1))
    assert runner.cluster_kwargs["dashboard_address"] == DASK_DASHBOARD_ADDRESS
    with runner:
        link = runner.client.dashboard_link  # the cluster starts with its client
        ports = listening_ports() - before
    assert ports and 8787 not in ports, ports
    assert f":{8787}/" not in link


# --------------------------------------------------------------------------- the run page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not answer in {seconds:.0f} s")


def _render(chromium: str, url: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran; a screenshot of it is saved too."""
    browse = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1400,1800",
        "--virtual-time-budget=20000",
    ]
    subprocess.run(
        [*browse, f"--screenshot={screenshot}", url], capture_output=True, timeout=180, check=False
    )
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, url
    return subprocess.run(
        [*browse, "--dump-dom", url], capture_output=True, text=True, timeout=180, check=False
    ).stdout


@pytest.mark.slow
def test_run_page_shows_the_summary_on_the_triggered_run(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    port = _free_port()
    env = dict(
        os.environ,
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_UI_API_URL=f"http://127.0.0.1:{port}/api",
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/api/health", 180)
        corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:1])
        out = tmp_path / "out"
        code = (
            "from flows.mine_corpus import mine_corpus\n"
            f"state = mine_corpus(corpus_paths=[{str(corpus)!r}], out_dir={str(out)!r}, "
            f"coder='rules', stages={STAGES!r}, return_state=True)\n"
            "print(state.state_details.flow_run_id)\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=REPO,
            text=True,
            capture_output=True,
            timeout=600,
            check=True,
        )
        flow_run_id = run.stdout.strip().splitlines()[-1]
        base = f"http://127.0.0.1:{port}"
        # the run page, Artifacts tab (Prefect's newer UI opens a tab from the address; the
        # default UI hides that tab until the run has loaded and so falls back to Logs)
        run_page = _render(
            chromium,
            f"{base}/v2/runs/flow-run/{flow_run_id}?tab=Artifacts",
            tmp_path / "flow-run-artifacts.png",
        )
        assert "textmine-run-summary" in run_page and "textmine-documents-by-type" in run_page
        assert "This run did not produce any artifacts" not in run_page
        # the summary itself, in the default UI: it belongs to the triggered mine-corpus run
        # and names the output folder and report.html by absolute path
        request = urllib.request.Request(
            f"{base}/api/artifacts/filter",
            method="POST",
            data=json.dumps({"artifacts": {"key": {"any_": ["textmine-run-summary"]}}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            (artifact,) = json.load(response)
        assert artifact["flow_run_id"] == flow_run_id
        summary_page = _render(
            chromium, f"{base}/artifacts/artifact/{artifact['id']}", tmp_path / "run-summary.png"
        )
        for text in (
            f"Output folder: <code[^>]*>{out.resolve()}</code>",
            f"<code[^>]*>{out.resolve() / 'report.html'}</code>",
        ):
            assert re.search(text.replace(".", r"\."), summary_page), text
        keep = os.environ.get("TEXTMINE_SCREENSHOT_DIR")
        if keep:  # for a person to look at
            for name in ("flow-run-artifacts.png", "run-summary.png"):
                shutil.copy(tmp_path / name, Path(keep) / name)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
