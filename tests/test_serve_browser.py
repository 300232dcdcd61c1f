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

from _dashboard_stores import add_multi_objective, add_seeds  # noqa: E402

from hpostore import open_store  # noqa: E402
from hpostore.serve import DashboardServer  # noqa: E402

CHILD = Path(__file__).with_name("serve_child.py")
WAIT_MS = 60_000  # generous: 2 shared cores; nothing here is a timing assertion
CHARTS = ("anytime", "curves", "timeline", "importance", "parcoords", "contour")


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


def _launch(pw: object) -> object:
    return pw.chromium.launch(  # type: ignore[attr-defined]
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
    )


def test_bands_contour_and_pareto_front_are_drawn(tmp_path: Path) -> None:
    store_path = os.fspath(tmp_path / "more.duckdb")
    store = open_store(store_path)
    try:
        add_seeds(store)
        add_multi_objective(store, trials=30)
    finally:
        store.close()
    errors: list[str] = []
    shots = [tmp_path / "dashboard-bands-contour.png", tmp_path / "dashboard-pareto.png"]
    with DashboardServer(store_path, port=0) as server, sync_api.sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )
            page.goto(server.url + "#study=rs1")
            page.wait_for_selector("#studies tbody tr[data-study='rs3']", timeout=WAIT_MS)
            _wait(page, "state.page !== null && state.study === 'rs1'")
            # contour: plotly drew filled contour paths under the trials' markers
            page.wait_for_selector("#chart-contour .contourlayer path", timeout=WAIT_MS)
            _wait(page, "document.getElementById('chart-contour').data[0].type === 'contour'")
            markers = page.evaluate("document.getElementById('chart-contour').data[1].x.length")
            assert markers == 15
            assert page.locator("#pareto-figure").is_hidden()  # one objective: no front

            # tick the two other seeds: one median line in a shaded band, no separate curves
            for study in ("rs2", "rs3"):
                page.click(f"#studies tr[data-study='{study}'] input")
            _wait(
                page,
                "document.getElementById('chart-anytime').data"
                ".some((t) => (t.name || '').includes('median of 3'))",
            )
            assert page.evaluate("document.getElementById('chart-anytime').data.length") == 3
            page.wait_for_selector("#chart-anytime .scatterlayer path.js-fill", timeout=WAIT_MS)
            band = _get(server.url + "api/anytime?study=rs1&study=rs2&study=rs3")["bands"][0]
            drawn = page.evaluate("document.getElementById('chart-anytime').data[2].y")
            first = band["n_studies"].index(3)  # drawn from where all three have a result
            assert drawn == band["median"][first:]

            # another pair of parameters: fetched and drawn with its own axes
            page.select_option("#contour-x", "n")
            _wait(
                page,
                "document.getElementById('chart-contour').layout.xaxis.title.text === 'n'",
            )
            page.select_option("#contour-y", "lr")
            _wait(page, "document.getElementById('chart-contour').layout.yaxis.type === 'log'")
            page.screenshot(path=os.fspath(shots[0]), full_page=True)

            # a two-objective study: all results, the front highlighted and joined
            page.click("#studies tr[data-study='mo-min'] td:nth-child(2)")
            page.wait_for_selector("#pareto-figure:not([hidden])", timeout=WAIT_MS)
            page.wait_for_selector("#chart-pareto .scatterlayer .trace", timeout=WAIT_MS)
            api = _get(server.url + "api/studies/mo-min")["pareto"]
            traces = page.evaluate(
                "document.getElementById('chart-pareto').data.map((t) => t.x.length)"
            )
            assert traces == [len(api["points"]["x"]), len(api["front"]["x"])]
            assert page.locator("#chart-pareto .scatterlayer .trace").count() == 2
            assert page.locator("#chart-pareto .scatterlayer .trace path.js-line").count() == 1
            assert "Pareto front" in page.locator("#pareto-caption").inner_text()
            assert page.locator("#slices > div").count() == 3  # x0, x1, x2: rs1's are gone
            page.locator("#pareto-figure").scroll_into_view_if_needed()
            page.screenshot(path=os.fspath(shots[1]), full_page=True)
        finally:
            browser.close()
    for shot in shots:
        assert shot.stat().st_size > 20_000, shot
    assert not errors, errors
    print(f"screenshots: {shots[0]} {shots[1]}")
