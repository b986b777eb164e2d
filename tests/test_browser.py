"""The course in a real browser: JupyterLab, launched as the README says, driven by Chromium.

Starts JupyterLab with the README's launch command (in a temporary course folder, on
127.0.0.1 with a token, smoke mode, an empty checkpoint cache), opens lesson 00 and a
training lesson in Debian's Chromium through Playwright, runs all cells, and checks
that no cell errors, that an ipywidgets slider renders and that dragging it redraws the
output below it. Screenshots go to ``build/ci/``.

Needs Chromium (``apt-get install chromium``, or ``AIGC_LAB_CHROMIUM=/path/to/chrome``)
and ``pip install playwright`` (no browser download). Without them the test is skipped,
unless ``AIGC_LAB_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labs.paths import NOTEBOOKS_DIR, REPO_ROOT

pytestmark = pytest.mark.notebooks

LESSONS = ["00_welcome.ipynb", "02_tokens_and_language_models.ipynb"]  # a training lesson
SHOTS = REPO_ROOT / "build" / "ci"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-proxy-server",  # JupyterLab is on loopback
]
# JupyterLab 4 renders only the cells on screen unless windowing is off; no network calls.
SETTINGS = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}
RUN_TIMEOUT_S = 240  # per notebook, smoke mode, on a loaded 2-core machine


def _chromium() -> str | None:
    return (
        os.environ.get("AIGC_LAB_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="module")
def browser_tools():
    """(sync_playwright, chromium path), or skip/fail when one is missing."""
    missing = []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
        missing.append("the Python package playwright (pip install -r requirements-ci.txt)")
    chromium = _chromium()
    if chromium is None:
        missing.append(
            "Chromium (apt-get install chromium, or set AIGC_LAB_CHROMIUM to a Chrome/Chromium)"
        )
    if missing:
        message = "the real-browser test needs " + " and ".join(missing)
        if os.environ.get("AIGC_LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (AIGC_LAB_REQUIRE_BROWSER=1 requires it)")
        pytest.skip(message + "; install them to run it")
    return sync_playwright, chromium


def _launch_commands() -> tuple[list[str], list[str]]:
    """The README's launch line, ``python -m labs.workspace && jupyter lab workspace/…``."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"\*\*Launch\*\*.*?```bash\n(.*?)```", readme, re.S).group(1).strip()
    first, second = (shlex.split(part) for part in block.split("&&"))
    assert first[:3] == ["python", "-m", "labs.workspace"], block
    assert second[:2] == ["jupyter", "lab"] and second[2].endswith("/00_welcome.ipynb"), block
    return first, second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory, browser_tools):
    """JupyterLab serving a fresh course workspace; yields (base URL, token, course folder)."""
    root = tmp_path_factory.mktemp("course")
    setup, launch = _launch_commands()
    # `python -m labs.workspace`, writing to this temporary course folder's workspace
    workspace = root / Path(launch[2]).parent
    proc = subprocess.run(
        [sys.executable, *setup[1:], "--dir", str(workspace)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in workspace.glob("*.ipynb")) == sorted(
        p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")
    )

    config = root / ".jupyter" / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "default_setting_overrides.json").write_text(json.dumps(SETTINGS))
    env = dict(
        os.environ,
        AIGC_LAB_SMOKE="1",
        AIGC_LAB_CACHE=str(root / "cache"),  # empty: lessons take their "train it" path
        JUPYTER_CONFIG_DIR=str(config),  # no personal settings; the overrides above
        JUPYTER_DATA_DIR=str(root / ".jupyter" / "data"),
        JUPYTER_RUNTIME_DIR=str(root / ".jupyter" / "runtime"),
        IPYTHONDIR=str(root / ".ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("MPLBACKEND", None)  # figures render inline, as for a learner
    port, token = _free_port(), secrets.token_hex(16)
    # `jupyter lab workspace/00_welcome.ipynb`, on loopback with a known port and token
    command = [
        sys.executable,
        "-m",
        "jupyter",
        *launch[1:],
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--LabApp.expose_app_in_browser=True",
        *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
    ]
    log = (root / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited ({server.returncode}):\n{_tail(root)}")
            try:
                _get(base, token, "/api/status")
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within 90 s:\n{_tail(root)}")
            time.sleep(0.3)
        tracker = _get(base, token, "/lab/api/settings/@jupyterlab/notebook-extension:tracker")
        assert tracker["schema"]["properties"]["windowingMode"]["default"] == "none", (
            "the settings override (windowing off) did not apply"
        )
        # `jupyter lab DIR/FILE` serves DIR: the learner's file browser shows the workspace
        _get(base, token, f"/api/contents/{Path(launch[2]).name}?content=0")
        yield base, token, root
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its kernels
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()


def _get(base: str, token: str, path: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    with direct.open(request, timeout=10) as response:
        return json.load(response)


def _tail(root: Path, n: int = 4000) -> str:
    return (root / "jupyterlab.log").read_text(errors="replace")[-n:]


# JavaScript run in the page; `window.jupyterapp` is JupyterLab (expose_app_in_browser).
OPEN = """async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
}"""
KERNEL_IDLE = """(path) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.context && panel.context.path === path
    && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}"""
RUN_ALL = """() => {
  window.__aigcRunAll = undefined;
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    ok => { window.__aigcRunAll = {ok: ok !== false}; },
    err => { window.__aigcRunAll = {ok: false, error: String(err)}; });
}"""
CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets
  .filter(cell => cell.model.type === 'code')
  .map(cell => ({
    source: cell.model.sharedModel.getSource().slice(0, 80),
    count: cell.model.executionCount,
    errors: cell.model.outputs.toJSON()
      .filter(o => o.output_type === 'error')
      .map(o => `${o.ename}: ${o.evalue}`),
  }))"""


def _run_lesson(page, path: str, shot: Path) -> dict:
    """Open ``path``, run all cells, check them and the first slider; return timings."""
    timings = {}
    start = time.monotonic()
    page.evaluate(OPEN, path)
    page.wait_for_function(KERNEL_IDLE, arg=path, timeout=90_000)
    timings["open"] = time.monotonic() - start

    start = time.monotonic()
    page.evaluate(RUN_ALL)
    page.wait_for_function("() => window.__aigcRunAll !== undefined", timeout=RUN_TIMEOUT_S * 1000)
    timings["run all"] = time.monotonic() - start
    run = page.evaluate("() => window.__aigcRunAll")
    cells = page.evaluate(CELLS)
    errors = [f"{c['source']!r}: {e}" for c in cells for e in c["errors"]]
    assert not errors, f"{path}: error output in the browser:\n" + "\n".join(errors)
    assert run["ok"], f"{path}: run all did not finish: {run}"
    not_run = [c["source"] for c in cells if c["count"] is None]
    assert not not_run, f"{path}: cells that did not run: {not_run}"

    # an ipywidgets slider renders; dragging it redraws the output below it
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    cell = panel.locator(".jp-CodeCell", has=page.locator(".widget-slider")).first
    handle = cell.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    assert handle.is_visible(), f"{path}: the slider did not render"
    drawn = cell.locator(".jp-OutputArea-child").last
    before = drawn.inner_html()
    track = cell.locator(".widget-slider .noUi-target").first.bounding_box()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    target = track["x"] + (0.15 if x > track["x"] + track["width"] / 2 else 0.85) * track["width"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(target, y, steps=3)
    page.mouse.up()
    deadline = time.monotonic() + 60
    while drawn.inner_html() == before:
        assert time.monotonic() < deadline, f"{path}: moving the slider changed nothing"
        page.wait_for_timeout(200)
    page.wait_for_function(KERNEL_IDLE, arg=path, timeout=60_000)  # every redraw done
    page.wait_for_timeout(300)  # and painted
    cell.scroll_into_view_if_needed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))
    return timings


def test_lessons_run_in_jupyterlab_in_a_real_browser(browser_tools, jupyterlab):
    sync_playwright, chromium = browser_tools
    base, token, root = jupyterlab
    page_errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            # the page the launch command opens
            page.goto(f"{base}/lab/tree/{LESSONS[0]}?token={token}")
            page.wait_for_function("() => !!window.jupyterapp", timeout=90_000)
            page.evaluate("() => window.jupyterapp.started")
            page.evaluate("() => window.jupyterapp.restored")
            for lesson in LESSONS:
                shot = SHOTS / f"browser-{Path(lesson).stem}.png"
                shot.with_suffix(".failed.png").unlink(missing_ok=True)
                try:
                    timings = _run_lesson(page, lesson, shot)
                except Exception:
                    SHOTS.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shot.with_suffix(".failed.png")))
                    print(_tail(root))
                    raise
                print(f"{lesson}: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
                assert shot.exists()
        finally:
            browser.close()
    print("page errors:", page_errors or "none")
