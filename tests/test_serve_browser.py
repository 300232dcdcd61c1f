"""The dashboard in a real browser: Debian's headless chromium, driven by Playwright, watches a
study that a child process is running; rows and charts appear, then update without a reload.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` package. Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(
        f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium) for the "
        "dashboard's browser test",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")
pytest.importorskip("starlette")

from hpostore.serve import DashboardServer  # noqa: E402

CHILD = Path(__file__).with_name("serve_child.py")
WAIT_MS = 60_000  # generous: 2 shared cores; nothing here is a timing assertion
CHARTS = ("anytime", "curves", "timeline", "importance", "parcoords")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.load(response))


def _wait_for_study(url: str, study: str, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        try:
            if any(s["study"] == study for s in _get(url + "api/studies")["studies"]):
                return
        except OSError:  # 503 while the log is unreadable, or not yet there
            pass
        assert child.poll() is None, "the study's process ended before its first event"
        time.sleep(0.2)
    raise AssertionError(f"study {study!r} never appeared at {url}")


def _wait(page: object, expression: str) -> None:
    """Poll ``expression`` in the page until it is true (Playwright's wait_for_function would
    evaluate a string, which the dashboard's Content-Security-Policy forbids, rightly)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression):  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"never true in the page: {expression}"
        time.sleep(0.2)


@pytest.mark.parametrize("backend", ["duckdb", "parquet"])
def test_the_dashboard_shows_a_live_study_and_updates_without_reload(
    tmp_path: Path, backend: str
) -> None:
    if backend == "duckdb":
        store = os.fspath(tmp_path / "runs.duckdb")  # read while the writer folds into it
    else:
        store = os.fspath(tmp_path / "runs") + "/"
        os.makedirs(store)
    gate = tmp_path / "second-session"  # the child resumes the study once this exists
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent), *sys.path])}
    child = subprocess.Popen(
        [sys.executable, str(CHILD), store, "live", "20", "30", str(gate)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    errors: list[str] = []
    try:
        deadline = time.monotonic() + WAIT_MS / 1000
        while not os.path.exists(store):  # the DuckDB file appears when the tuner opens it
            assert child.poll() is None and time.monotonic() < deadline, "no store was created"
            time.sleep(0.1)
        with DashboardServer(store, port=0) as server:
            _wait_for_study(server.url, "live", child)
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
                    page.on(
                        "console",
                        lambda msg: (
                            errors.append(f"console: {msg.text}") if msg.type == "error" else None
                        ),
                    )
                    page.goto(server.url)
                    page.wait_for_selector("#studies tbody tr[data-study='live']", timeout=WAIT_MS)
                    page.wait_for_selector("#trials tbody tr", timeout=WAIT_MS)
                    for chart in CHARTS:
                        page.wait_for_selector(f"#chart-{chart} .main-svg", timeout=WAIT_MS)
                    _wait(page, "state.page !== null && state.page.points.trial.length > 0")
                    _wait(page, "document.getElementById('chart-anytime').data[0].x.length > 0")
                    first_rows = page.locator("#trials tbody tr").count()
                    first_seq = page.evaluate("state.lastSeq")
                    page.evaluate("window.__not_reloaded = true")
                    early = tmp_path / f"dashboard-{backend}-early.png"
                    page.screenshot(path=os.fspath(early), full_page=True)

                    gate.touch()
                    # new trials land: the table grows and the seq advances, same document
                    _wait(
                        page, f"document.querySelectorAll('#trials tbody tr').length > {first_rows}"
                    )
                    assert page.evaluate("state.lastSeq") > first_seq
                    assert page.evaluate("window.__not_reloaded") is True

                    assert child.wait(timeout=WAIT_MS / 1000) == 0, child.stderr
                    api = _get(server.url + "api/studies/live")  # the final log
                    _wait(page, f"state.lastSeq === {api['info']['last_seq']}")
                    assert page.locator("#study-info").inner_text().startswith("ended")
                    _wait(
                        page,
                        "document.querySelector(\"#studies tr[data-study='live'] td:nth-child(3)\")"
                        ".textContent === 'ended'",
                    )
                    assert page.locator("#studies tbody tr").count() == 1
                    final = page.locator("#trials tbody tr").count()
                    assert final == api["trials"]["total"] == api["info"]["trials"] > first_rows
                    shown = set(page.locator("#trials tbody td:nth-child(2)").all_inner_texts())
                    assert shown == {row[1] for row in api["trials"]["rows"]}
                    bars = page.evaluate(
                        "document.getElementById('chart-timeline').data"
                        ".reduce((n, t) => n + t.y.length, 0)"
                    )
                    assert bars == len(api["timeline"]["bars"]) > 0
                    workers = {b["worker"] for b in api["timeline"]["bars"]} - {"unknown"}
                    assert len(workers) >= 2  # worker processes ran trials side by side
                    slices = page.locator("#slices .main-svg").count()
                    assert slices >= 3  # x, lr, act

                    # sorting and filtering happen in the page
                    page.fill("#trials-filter", "failed")
                    rows = page.locator("#trials tbody tr").all_inner_texts()
                    failed = sum(row[1] == "failed" for row in api["trials"]["rows"])
                    assert failed > 0 and len(rows) == failed  # x > 0.95 fails
                    page.fill("#trials-filter", "")
                    assert page.locator("#studies tbody tr").count() == 1
                    late = tmp_path / f"dashboard-{backend}-final.png"
                    page.screenshot(path=os.fspath(late), full_page=True)
                finally:
                    browser.close()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
    for shot in (early, late):
        assert shot.stat().st_size > 20_000, shot  # a rendered page, not a blank one
    assert not errors, errors
    print(f"screenshots: {early} {late}")
