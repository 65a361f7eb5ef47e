"""The bento really deploys: ``bentoml build`` packages the pages and templates of the worklist
and pins the tested versions, and the built bento's own source tree serves ``/ui`` and
``/score``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.processes import BIN, free_port, start, stop, wait_http
from tests.serving.conftest import make_shipment
from tests.serving.helpers import (
    mlflow_server,
    register_model,
    service_env,
    tiny_history,
    train_tiny_model,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = "cargorisk-risk"


def test_serving_requirements_are_the_constraints_runtime_tree():
    """The committed serving-requirements.txt is what the generator makes from pyproject.toml
    and constraints.txt today (a stale file would ship other versions than we test)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "serving_requirements.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    pinned = {
        line.split("==")[0]: line.split("==")[1]
        for line in (ROOT / "serving-requirements.txt").read_text().splitlines()
        if "==" in line
    }
    constraints = {
        line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    for name in ("bentoml", "lightgbm", "mlflow", "pandas", "jinja2", "sqlalchemy"):
        assert pinned[name] == constraints[name], name
    assert "pytest" not in pinned and "playwright" not in pinned  # test tools stay out


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_built_bento_serves_the_worklist_and_scores(tmp_path):
    bentoml_home = tmp_path / "bentoml"
    env = service_env(tmp_path / "home", "unused")
    env["BENTOML_HOME"] = str(bentoml_home)
    built = subprocess.run(
        [str(BIN / "bentoml"), "build", "--output", "tag", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [bento] = list((bentoml_home / "bentos" / "cargorisk").glob("*/bento.yaml"))
    src = bento.parent / "src"
    templates = {p.name for p in (src / "serving/ui/templates").glob("*.html")}
    assert {"base.html", "login.html", "worklist.html", "shipment.html"} <= templates
    assert {"search.html", "party.html", "network.html", "watchlist.html"} <= templates
    assert {p.name for p in (src / "serving/ui/static").iterdir()} >= {
        "app.css",
        "app.js",
        "cytoscape.min.js",
        "cytoscape.LICENSE.txt",
    }
    assert {"index.html", "explorer.html", "explorer.js"} <= {
        p.name for p in (src / "serving").iterdir()
    }
    assert not (src / "tests").exists()
    requirements = (bento.parent / "env/python/requirements.txt").read_text()
    assert "lightgbm==" in requirements and ">=" not in requirements
    assert yaml.safe_load(bento.read_text())["service"] == "serving.service:CargoRisk"

    # the bento's source tree comes first on the path of `bentoml serve --working-dir`, so the
    # service runs the bento's own copy (templates included), not this checkout
    where = subprocess.run(
        [sys.executable, "-c", "import serving.ui.app as a; print(a.__file__)"],
        cwd=src,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(src)},
    )
    assert where.stdout.strip().startswith(str(src)), where.stdout + where.stderr

    ships, outs = tiny_history(n=300)
    with mlflow_server(tmp_path / "mlflow") as tracking:
        register_model(train_tiny_model(ships, outs), tracking, MODEL, tmp_path / "v1")
        env = {**service_env(tmp_path / "home", tracking), "BENTOML_HOME": str(bentoml_home)}
        key = subprocess.run(
            [str(BIN / "cargorisk"), "keys", "create", "--role", "officer", "--name", "bento"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        port = free_port()
        cmd = [
            str(BIN / "bentoml"),
            "serve",
            "serving.service:CargoRisk",
            "--working-dir",
            str(src),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        proc = start(cmd, {**env, "PYTHONPATH": str(src)}, tmp_path / "bento.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/readyz", timeout=180, proc=proc)
            page = httpx.get(f"{url}/ui/login", timeout=30)
            assert page.status_code == 200 and "<form" in page.text
            assert httpx.get(f"{url}/ui/static/app.css", timeout=30).status_code == 200
            assert "/docs.json" in httpx.get(f"{url}/", timeout=30).text  # the plain page
            scored = httpx.post(
                f"{url}/score",
                json={"shipment": make_shipment(1)},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert scored.status_code == 200, scored.text[:300]
            assert 0.0 <= scored.json()["score"] <= 1.0
        finally:
            stop(proc)
