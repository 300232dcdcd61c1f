"""The dashboard's HTTP API (hpostore.serve) with Starlette's TestClient, on real stores."""

from __future__ import annotations

import hashlib
import math
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import analysis

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from _dashboard_stores import add_multi_objective, add_seeds  # noqa: E402
from _shared import SPACE  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hpostore import (
    ASHAScheduler,
    HPOStoreError,
    HPOTuner,
    InvalidArgument,
    RandomSearcher,
    open_store,
)  # noqa: E402
from hpostore.serve import DashboardServer, LogSource, _panels, create_app, importance  # noqa: E402

LOOPBACK = "http://127.0.0.1"


def objective(x: float, lr: float, n: int, act: str, max_epochs: int, report: object) -> float:
    if x > 0.9:
        raise ValueError("diverged: x > 0.9")
    error = 1.0
    for epoch in range(1, int(max_epochs) + 1):
        error = (x - 0.25) ** 2 + 1.0 / (epoch + n) + (0.05 if act == "tanh" else 0.0)
        report(resource=epoch, error=error)  # type: ignore[operator]
    return error


def run_study(store_path: str, study: str, trials: int) -> None:
    scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=3), eta=3, r_min=1, r_max=9)
    store = open_store(store_path)
    try:
        HPOTuner(scheduler, objective, store=store, study=study, verbose=False).run(trials)
    finally:
        store.close()


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = os.fspath(tmp_path_factory.mktemp("serve") / "runs.duckdb")
    run_study(path, "asha", 24)
    run_study(path, "other/study", 6)  # a name with a slash reaches its page too
    return path


@pytest.fixture
def client(study_file: str) -> TestClient:
    return TestClient(create_app(LogSource(study_file)), base_url=LOOPBACK)


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_the_studies_list_says_status_trials_and_best(client: TestClient, study_file: str) -> None:
    body = client.get("/api/studies").json()
    assert body["source"] == study_file
    rows = {s["study"]: s for s in body["studies"]}
    assert set(rows) == {"asha", "other/study"}
    asha = rows["asha"]
    assert asha["status"] == "ended"
    assert asha["trials"] >= 10 and asha["failed"] >= 1  # x > 0.9 fails
    assert asha["best_error"] is not None and asha["elapsed_s"] > 0


def test_a_study_page_holds_every_chart_consistent_with_the_log(client: TestClient) -> None:
    page = client.get("/api/studies/asha").json()
    info = page["info"]
    assert sorted(p["name"] for p in page["params"]) == ["act", "lr", "n", "x"]
    assert {p["name"]: p["kind"] for p in page["params"]} == {
        "x": "float", "lr": "log", "n": "int", "act": "choice",
    }  # fmt: skip
    trials = page["trials"]
    assert trials["total"] == info["trials"] == len(trials["rows"])
    cols = trials["columns"]
    assert cols[:2] == ["trial", "status"] and sorted(cols[-4:]) == ["act", "lr", "n", "x"]
    statuses = {row[1] for row in trials["rows"]}
    assert "failed" in statuses
    failed = next(r for r in trials["rows"] if r[1] == "failed")
    assert "diverged" in failed[cols.index("message")]
    # importance: x decides the error (and the failures), so it ranks first
    assert page["importance"][0]["param"] == "x"
    assert all(0.0 <= r["eta2"] <= 1.0 for r in page["importance"])
    # ASHA promotion: paused and promoted trials are marked on their learning curves
    curves = page["curves"]
    assert curves["lines"] and {m["decision"] for m in curves["marks"]} >= {"promote"}
    timeline = page["timeline"]
    assert len(timeline["bars"]) == timeline["total"] > info["trials"]  # promotions restart
    assert all(b["end"] is None or b["end"] >= b["start"] for b in timeline["bars"])
    best = page["anytime"]["best_error"]
    assert best == sorted(best, reverse=True) and best[-1] == pytest.approx(info["best_error"])
    assert len(page["points"]["trial"]) == len(page["points"]["error"]) > 0


def test_a_study_name_with_a_slash_has_a_page_and_events(client: TestClient) -> None:
    assert client.get("/api/studies/other%2Fstudy").json()["info"]["study"] == "other/study"
    assert client.get("/api/studies/other/study/events").json()["study"] == "other/study"


def test_events_after_a_seq_are_the_newest_ones_in_order(client: TestClient) -> None:
    last = client.get("/api/studies/asha").json()["info"]["last_seq"]
    body = client.get(f"/api/studies/asha/events?after={last - 3}").json()
    assert body["last_seq"] == last
    assert [e["seq"] for e in body["events"]] == [last - 2, last - 1, last]
    assert body["events"][-1]["kind"] == "end" and body["more"] is False
    assert client.get(f"/api/studies/asha/events?after={last}").json()["events"] == []
    capped = client.get("/api/studies/asha/events?after=0&limit=5").json()
    assert [e["seq"] for e in capped["events"]] == list(range(last - 4, last + 1))
    assert capped["more"] is True


@pytest.mark.parametrize(
    "url",
    [
        "/api/studies/asha/events?after=x",
        "/api/studies/asha/events?after=-1",
        "/api/studies/asha/events?limit=100000",
        "/api/anytime",
        "/api/anytime?" + "&".join(f"study=s{i}" for i in range(13)),
    ],
)
def test_bad_query_parameters_are_a_400_with_a_message(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    "url", ["/api/studies/nope", "/api/studies/nope/events", "/api/anytime?study=asha&study=nope"]
)
def test_an_unknown_study_is_a_404_naming_the_known_ones(client: TestClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert "'nope'" in response.json()["error"] and "'asha'" in response.json()["error"]


def test_the_dashboard_is_read_only_and_runs_no_sql_from_requests(
    client: TestClient, study_file: str
) -> None:
    before = _digest(study_file)
    events = client.get("/api/studies").json()["studies"][0]["events"]
    for name in ("asha'; DELETE FROM events; --", "x' OR 1=1 --", "asha%00"):
        assert client.get("/api/studies/" + name).status_code == 404
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, "/api/studies/asha").status_code == 405
    assert client.get("/api/studies").json()["studies"][0]["events"] == events
    assert _digest(study_file) == before


def test_request_bodies_are_bounded(client: TestClient) -> None:
    big = b"x" * (64 * 1024 + 1)
    response = client.post("/api/studies", content=big)
    assert response.status_code == 413 and "65536 bytes" in response.json()["error"]
    assert client.post("/api/studies", content=b"{}").status_code == 405  # small: not a route


def test_a_token_is_checked_on_every_request(study_file: str) -> None:
    token = "s3cret-token-123"
    client = TestClient(
        create_app(LogSource(study_file), token=token), base_url="http://192.0.2.7:8765"
    )
    for url in ("/", "/static/app.js", "/api/studies", "/api/studies/asha/events"):
        assert client.get(url).status_code == 401
        assert client.get(url, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    opened = client.get(f"/?token={token}")  # the printed link: the page then uses a cookie
    assert opened.status_code == 200 and "HttpOnly" in opened.headers["set-cookie"]
    assert client.get("/api/studies").status_code == 200  # the cookie set above
    client.cookies.clear()
    assert client.get("/api/studies").status_code == 401


def test_without_a_token_only_loopback_host_names_are_answered(client: TestClient) -> None:
    assert client.get("/api/studies").status_code == 200
    assert client.get("/api/studies", headers={"Host": "localhost:8765"}).status_code == 200
    rebinding = client.get("/api/studies", headers={"Host": "evil.example:8765"})
    assert rebinding.status_code == 403 and "loopback" in rebinding.json()["error"]


def test_the_page_and_plotly_are_served_locally_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts == ["/static/plotly.min.js", "/static/app.js"]  # no CDN
    assert "script-src 'self'" in page.headers["content-security-policy"]
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/secret.txt").status_code == 404
    assert client.get("/static/..%2F_app.py").status_code == 404


def test_a_parquet_directory_live_writer_is_seen_as_it_grows(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "runs") + "/"
    run_study(path, "asha", 6)
    client = TestClient(create_app(LogSource(path)), base_url=LOOPBACK)
    first = client.get("/api/studies/asha").json()["info"]
    assert client.get("/api/studies/asha").json()["info"] == first  # cached: same reading
    run_study(path, "asha", 12)  # a resumed session adds trials
    events = client.get(f"/api/studies/asha/events?after={first['last_seq']}&limit=500").json()
    assert events["last_seq"] > first["last_seq"]
    assert events["events"][0]["seq"] == first["last_seq"] + 1
    assert events["events"][0]["kind"] == "session"
    now = client.get("/api/studies/asha").json()["info"]
    assert now["trials"] > first["trials"] and now["sessions"] == 2


def test_importance_finds_the_parameter_that_decides_and_not_noise() -> None:
    xs = [i / 99 for i in range(100)]
    noise = [float(i % 2) for i in range(100)]
    ranked = dict(
        importance({"noise": noise, "x": xs, "cat": ["a", "b"] * 50}, [x * x for x in xs])
    )
    assert ranked["x"] > 0.9 and ranked["noise"] < 0.05 and ranked["cat"] < 0.05
    assert dict(importance({"x": xs}, [1.0] * 100)) == {"x": 0.0}  # constant error
    assert importance({"x": [None, 1.0]}, [0.0, 1.0]) == []  # too few values


def test_any_host_but_loopback_needs_a_token(study_file: str) -> None:
    server = DashboardServer(study_file, host="0.0.0.0", port=0)
    try:
        assert server.token is not None and len(server.token) >= 24
        assert f"?token={server.token}" in server.url
    finally:
        server._socket.close()
    local = DashboardServer(study_file, port=0)
    try:
        assert local.token is None and local.url.startswith("http://127.0.0.1:")
    finally:
        local._socket.close()
    with pytest.raises(InvalidArgument, match="at least 8"):
        DashboardServer(study_file, port=0, token="short")


def test_a_file_that_is_no_event_log_is_refused_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "notes.duckdb"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(HPOStoreError, match="notes.duckdb"):
        DashboardServer(junk, port=0)
    with pytest.raises(HPOStoreError, match="no event log"):
        DashboardServer(tmp_path / "missing.duckdb", port=0)


def test_serve_in_the_background_answers_over_http(study_file: str) -> None:
    with (
        DashboardServer(study_file, port=0) as server,
        urllib.request.urlopen(server.url + "api/studies", timeout=10) as response,
    ):
        assert b'"asha"' in response.read()


def test_the_serve_command_prints_its_url_and_stops_on_ctrl_c(study_file: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "hpostore.cli", "serve", study_file, "--port", "0",
         "--host", "0.0.0.0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        match = re.search(r"http://0\.0\.0\.0:(\d+)/\?token=(\S+)", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(base + "/api/studies", timeout=10)
        assert denied.value.code == 401
        request = urllib.request.Request(
            base + "/api/studies", headers={"Authorization": f"Bearer {match.group(2)}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert b'"asha"' in response.read()
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_writer_open_in_this_process_is_read_through_it(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "live.duckdb")
    store = open_store(path)  # this process writes the file: the dashboard reads through it
    try:
        scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=1), eta=3, r_min=1, r_max=9)
        HPOTuner(scheduler, objective, store=store, study="here", verbose=False).run(4)
        client = TestClient(create_app(LogSource(path)), base_url=LOOPBACK)
        first = client.get("/api/studies/here").json()
        assert first["stale"] is False and first["info"]["evaluations"] >= 4
        scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=1), eta=3, r_min=1, r_max=9)
        HPOTuner(scheduler, objective, store=store, study="here", verbose=False).run(8)
        later = client.get(f"/api/studies/here/events?after={first['info']['last_seq']}").json()
        assert later["events"] and later["last_seq"] > first["info"]["last_seq"]
        assert client.get("/api/studies/here").json()["info"]["sessions"] == 2
        overlay = client.get("/api/anytime?study=here").json()["curves"]
        assert [c["study"] for c in overlay] == ["here"]
    finally:
        store.close()


def test_several_studies_overlay_on_one_anytime_chart(client: TestClient) -> None:
    curves = client.get("/api/anytime?study=asha&study=other/study&study=asha").json()["curves"]
    assert [c["study"] for c in curves] == ["asha", "other/study"]  # each once
    for c in curves:
        assert len(c["elapsed"]) == len(c["best_error"]) >= 1
        assert c["end_elapsed"] >= c["elapsed"][-1]


# ---- quantile bands, contour, Pareto front ----------------------------------------------


@pytest.fixture(scope="module")
def more_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three seeds of one setup and one study of another; multi-objective studies."""
    path = os.fspath(tmp_path_factory.mktemp("serve-more") / "more.duckdb")
    store = open_store(path)
    try:
        add_seeds(store)
        scheduler = ASHAScheduler(RandomSearcher(SPACE, seed=9), eta=3, r_min=1, r_max=9)
        HPOTuner(scheduler, objective, store=store, study="asha", verbose=False).run(12)
        add_multi_objective(store)
    finally:
        store.close()
    return path


@pytest.fixture
def more(more_file: str) -> TestClient:
    return TestClient(create_app(LogSource(more_file)), base_url=LOOPBACK)


def test_a_band_is_the_median_and_quartiles_of_known_step_curves() -> None:
    def curve(study: str, xs: list[float], best: list[float], end: float) -> dict:
        return {"study": study, "elapsed": xs, "best_error": best, "end_elapsed": end}

    curves = [
        curve("s1", [1, 3], [10, 4], 5),
        curve("s2", [2], [6], 4),
        curve("s3", [1, 4], [8, 2], 6),
        curve("alone", [1], [1], 2),
    ]
    setup = {
        "searcher": "a.RandomSearcher",
        "scheduler": "b.FIFO",
        "metric": "error",
        "mode": "min",
    }
    rows = {s: {"study": s, **setup} for s in ("s1", "s2", "s3")}
    rows["alone"] = {"study": "alone", **setup, "searcher": "a.TPE"}
    [band] = _panels.bands(curves, rows, "elapsed")  # one study alone gets no band
    assert band["group"] == "RandomSearcher + FIFO" and band["studies"] == ["s1", "s2", "s3"]
    # steps of the three held to the last end: at 1 (10, -, 8), 2 (10, 6, 8), 3 (4, 6, 8),
    # from 4 on (4, 6, 2); numpy's linear quantiles
    assert band["x"] == [1, 2, 3, 4, 5, 6]
    assert band["n_studies"] == [2, 3, 3, 3, 3, 3]
    assert band["median"] == [9, 8, 6, 4, 4, 4]
    assert band["q_low"] == [8.5, 7, 5, 3, 3, 3]
    assert band["q_high"] == [9.5, 9, 7, 5, 5, 5]


def _step(xs: list[float], ys: list[float], t: float) -> float:
    before = [y for x, y in zip(xs, ys) if x <= t]
    return before[-1] if before else math.nan


def test_overlaid_seeds_of_one_setup_get_a_band_and_others_stay_lines(more: TestClient) -> None:
    names = ["rs1", "rs2", "rs3", "asha"]
    for x in ("elapsed", "n_finished"):
        body = more.get("/api/anytime?" + "&".join(f"study={n}" for n in names) + f"&x={x}").json()
        assert [c["study"] for c in body["curves"]] == names
        [band] = body["bands"]
        assert band["studies"] == ["rs1", "rs2", "rs3"] and band["quantiles"] == [0.25, 0.75]
        seeds = body["curves"][:3]
        for i, t in enumerate(band["x"]):
            at = [_step(c[x], c["best_error"], t) for c in seeds]
            values = [v for v in at if not math.isnan(v)]
            assert band["n_studies"][i] == len(values)
            assert band["median"][i] == pytest.approx(float(np.median(values)))
            assert band["q_low"][i] == pytest.approx(float(np.quantile(values, 0.25)))
            assert band["q_high"][i] == pytest.approx(float(np.quantile(values, 0.75)))
        assert band["n_studies"][-1] == 3
    assert more.get("/api/anytime?study=rs1").json()["bands"] == []  # one study: a line
    assert more.get("/api/anytime?study=rs1&x=seq").status_code == 400


def test_contour_cells_hold_the_mean_result_of_their_trials() -> None:
    params = [{"name": "x", "kind": "float"}, {"name": "lr", "kind": "log"},
              {"name": "act", "kind": "choice", "values": ["a", "b"]}]  # fmt: skip
    # 18 trials: 3 x 3 cells; x splits at 1 and 2, lr (log) at 10^-3 and 10^-2
    xs = [0.0, 0.5, 1.5, 1.9, 2.5, 3.0] * 3
    lrs = [1e-4] * 6 + [10**-2.5] * 6 + [1e-1] * 6
    errors = [1.0, 3.0, 5.0, 7.0, 10.0, 20.0] + [2.0] * 6 + [0.0, 1.0, None, None, 4.0, 6.0]
    points = {"trial": list(range(18)), "error": errors, "params": {"x": xs, "lr": lrs}}
    grid = _panels.contour(points, params, "min", "x", "lr")
    assert grid["x"] == {"name": "x", "log": False, "centres": [0.5, 1.5, 2.5], "range": [0, 3]}
    assert grid["y"]["log"] is True and grid["y"]["range"] == pytest.approx([1e-4, 1e-1])
    assert grid["y"]["centres"] == pytest.approx([10**-3.5, 10**-2.5, 10**-1.5])
    assert grid["z"] == [[2.0, 6.0, 15.0], [2.0, 2.0, 2.0], [0.5, None, 5.0]]
    assert grid["count"] == 16  # the two without a result are left out
    with pytest.raises(_panels.UnknownParameter, match="act"):
        _panels.contour(points, params, "min", "x", "act")


def test_contour_of_a_study_defaults_to_its_two_most_important_parameters(
    more: TestClient,
) -> None:
    page = more.get("/api/studies/asha").json()
    numeric = [r["param"] for r in page["importance"] if r["param"] in ("x", "lr", "n")]
    grid = page["contour"]
    assert [grid["x"]["name"], grid["y"]["name"]] == numeric[:2]
    assert grid["count"] == len(page["points"]["trial"])
    other = more.get("/api/studies/asha/contour?x=n&y=lr").json()
    assert other["x"]["name"] == "n" and other["x"]["log"] is False and other["y"]["log"] is True
    cells = [v for row in other["z"] for v in row if v is not None]
    errors = page["points"]["error"]
    assert cells and min(errors) <= min(cells) and max(cells) <= max(errors)
    for bad in ("x=act&y=lr", "x=nope&y=lr"):
        response = more.get(f"/api/studies/asha/contour?{bad}")
        assert response.status_code == 400 and "numeric" in response.json()["error"]


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


@pytest.mark.parametrize("study", ["mo", "mo-min", "mo3"])
def test_the_pareto_front_is_exactly_the_non_dominated_trials(
    more: TestClient, more_file: str, study: str
) -> None:
    page = more.get(f"/api/studies/{study}").json()
    pareto = page["pareto"]
    modes = [o["mode"] for o in pareto["objectives"]]
    front, rest = pareto["front"], pareto["points"]
    assert len(front["trial"]) + len(rest["trial"]) == pareto["total"] == 40
    assert front["x"] == sorted(front["x"])  # along the first objective, for the step line
    # the same trials as the pareto view (the fold's front), over all the objectives
    view = analysis.pareto(more_file, study).column("trial").to_pylist()
    assert sorted(front["trial"]) == sorted(view) and 1 <= len(view) < 40
    if len(modes) == 2:  # in the plane: no front point dominated, every other one dominated
        sign = [-1.0 if m == "max" else 1.0 for m in modes]
        loss = lambda o, i: (sign[0] * o["x"][i], sign[1] * o["y"][i])  # noqa: E731
        fronts = [loss(front, i) for i in range(len(front["trial"]))]
        others = [loss(rest, i) for i in range(len(rest["trial"]))]
        assert not any(_dominates(q, p) for p in fronts for q in fronts + others)
        assert all(any(_dominates(q, p) for q in fronts) for p in others)
    assert more.get("/api/studies/rs1").json()["pareto"] is None  # one objective: none


def test_the_front_of_many_points_matches_the_analysis_front() -> None:
    rng = np.random.default_rng(0)
    for k in (2, 3):
        losses = np.round(rng.random((300, k)), 1)  # many ties and duplicates
        mask = _panels._front_mask(losses)
        expected = set(analysis.non_dominated(losses.tolist()))
        assert {tuple(p) for p in losses[mask].tolist()} == expected
        # every copy of a front point is on the front (equal points do not dominate)
        assert all(mask[i] for i, p in enumerate(losses.tolist()) if tuple(p) in expected)
