"""The study service's HTTP API (ask/tell/report/heartbeat) with Starlette's TestClient, on real
stores: each refusal has its status and message and logs nothing; leases expire on a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from scipy import stats  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from hpostore import (  # noqa: E402
    BasicScheduler,
    HPOTuner,
    RandomSearcher,
    TrialStatus,
    open_store,
)
from hpostore.serve import StudyService, create_app  # noqa: E402
from hpostore.serve._rebuild import rebuild  # noqa: E402
from hpostore.serve._routes import routes  # noqa: E402
from hpostore.serve._source import LogSource  # noqa: E402
from hpostore.worker import parse_result  # noqa: E402

SPACE = {"x": stats.uniform(-1, 2)}
TOKEN = "s3cret-token-123"


def make_study(path: str, study: str = "s") -> None:
    """A study logged with its spec and no trials (what `hpostore serve` then serves)."""
    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=1)), lambda x: x * x,
                     store=path, study=study, verbose=False)  # fmt: skip
    tuner.set_study_attr("created", True)
    tuner.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, StudyService, Clock]]:
    path = str(tmp_path / "runs.duckdb")
    make_study(path)
    store = open_store(path)
    clock = Clock()
    service = StudyService(store, lease_s=10, clock=clock)
    app = create_app(LogSource(store), extra_routes=routes(service))
    yield TestClient(app, base_url="http://127.0.0.1"), service, clock
    service.close()
    store.close()


def last_seq(service: StudyService) -> int:
    return service.store.last_seq("s")


def ask(client: TestClient, **body: Any) -> dict[str, Any]:
    reply = client.post("/api/studies/s/ask", json=body)
    assert reply.status_code == 200, reply.text
    answer: dict[str, Any] = reply.json()
    return answer


def refused(client: TestClient, service: StudyService, status: int, path: str, **kw: Any) -> str:
    """POST ``path``; assert ``status`` and that nothing was logged; the error message."""
    before = last_seq(service)
    reply = client.post(path, **kw)
    assert reply.status_code == status, reply.text
    assert last_seq(service) == before
    message: str = reply.json()["error"]
    return message


def test_ask_report_tell_round_trip(served: tuple[TestClient, StudyService, Clock]) -> None:
    client, service, _ = served
    a = ask(client, worker="w1")
    assert set(a) >= {"trial", "config", "attempt", "lease_id", "lease_s"}
    assert a["attempt"] == 1 and -1 <= a["config"]["x"] <= 1
    path = f"/api/studies/s/trials/{a['trial']}"
    assert client.post(f"{path}/report", json={"lease_id": a["lease_id"], "resource": 1,
                                               "error": 0.5}).json() == {"stop": False}  # fmt: skip
    assert client.post(f"{path}/heartbeat", json={"lease_id": a["lease_id"]}).status_code == 200
    assert client.post(f"{path}/tell", json={"lease_id": a["lease_id"], "value": 0.25}).json()[
        "told"
    ]
    t = service.tuner("s").state.trials[a["trial"]]
    assert t.status is TrialStatus.FINISHED and t.error == 0.25


def test_each_refusal_logs_nothing(served: tuple[TestClient, StudyService, Clock]) -> None:
    client, service, _ = served
    a = ask(client)
    path = f"/api/studies/s/trials/{a['trial']}"
    assert "not valid JSON" in refused(client, service, 400, "/api/studies/s/ask",
                                       content=b"{", headers={"content-type": "application/json"})  # fmt: skip
    assert "JSON object" in refused(client, service, 400, "/api/studies/s/ask", json=[1])
    assert "Content-Type" in refused(client, service, 415, "/api/studies/s/ask", content=b"{}")
    assert "trials" in refused(client, service, 400, "/api/studies/s/ask", json={"trials": 0})
    assert "no study 'nope'" in refused(client, service, 404, "/api/studies/nope/ask", json={})
    assert "no trial 99" in refused(client, service, 404, "/api/studies/s/trials/99/tell",
                                    json={"lease_id": "x"})  # fmt: skip
    assert "integers" in refused(client, service, 404, "/api/studies/s/trials/abc/tell", json={})
    assert "does not hold it" in refused(client, service, 409, f"{path}/tell",
                                         json={"lease_id": "forged", "value": 1.0})  # fmt: skip
    assert "finite" in refused(client, service, 400, f"{path}/report",
                               json={"lease_id": a["lease_id"], "resource": 1, "error": None})  # fmt: skip
    assert "not both" in refused(client, service, 400, f"{path}/tell",
                                 json={"lease_id": a["lease_id"], "value": 1, "failed": "x"})  # fmt: skip
    assert "413" not in refused(client, service, 413, f"{path}/tell",
                                json={"lease_id": a["lease_id"], "pad": "x" * 100_000})  # fmt: skip
    # the lease survived every refusal: the tell goes through once, then is refused
    assert client.post(f"{path}/tell", json={"lease_id": a["lease_id"], "value": 1.0}).status_code == 200  # fmt: skip
    assert "told already" in refused(client, service, 409, f"{path}/tell",
                                     json={"lease_id": a["lease_id"], "value": 1.0})  # fmt: skip
    assert "told already" in refused(client, service, 409, f"{path}/heartbeat",
                                     json={"lease_id": a["lease_id"]})  # fmt: skip


def test_expired_lease_goes_to_the_next_ask(served: tuple[TestClient, StudyService, Clock]) -> None:
    client, service, clock = served
    a = ask(client, worker="dead")
    clock.now = 5.0  # a heartbeat renews the lease
    assert client.post(f"/api/studies/s/trials/{a['trial']}/heartbeat",
                       json={"lease_id": a["lease_id"]}).status_code == 200  # fmt: skip
    clock.now = 14.0
    b = ask(client, worker="w2")  # the lease still stands: a new trial
    assert b["trial"] != a["trial"]
    clock.now = 15.1  # a's lease (renewed at 5 s) has run out, b's (14 s) has not
    c = ask(client, worker="w3")
    assert (c["trial"], c["attempt"]) == (a["trial"], 2) and c["config"] == a["config"]
    message = refused(client, service, 409, f"/api/studies/s/trials/{a['trial']}/tell",
                      json={"lease_id": a["lease_id"], "value": 0.1})  # fmt: skip
    assert "expired" in message
    events = service.store.events("s", columns=["kind", "trial", "payload"]).to_pylist()
    interrupts = [e for e in events if e["kind"] == "interrupt"]
    assert [e["trial"] for e in interrupts] == [a["trial"]]
    assert json.loads(interrupts[0]["payload"]) == {"reason": "lease expired", "worker": "dead"}
    assert client.post(f"/api/studies/s/trials/{c['trial']}/tell",
                       json={"lease_id": c["lease_id"], "value": 0.1}).status_code == 200  # fmt: skip


def test_done_when_the_study_has_its_trials(served: tuple[TestClient, StudyService, Clock]) -> None:
    client, _, _ = served
    held = [ask(client, trials=2) for _ in range(2)]
    assert "wait" in ask(client, trials=2)  # both held: someone may still fail to tell
    for a in held:
        client.post(f"/api/studies/s/trials/{a['trial']}/tell",
                    json={"lease_id": a["lease_id"], "failed": "boom"})  # fmt: skip
    assert ask(client, trials=2) == {"done": True, "trials": 2}


def test_token_is_required_for_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "runs.duckdb")
    make_study(path)
    store = open_store(path)
    service = StudyService(store)
    app = create_app(LogSource(store), token=TOKEN, extra_routes=routes(service))
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        assert client.post("/api/studies/s/ask", json={}).status_code == 401
        assert store.last_seq("s") == 4
        ok = client.post("/api/studies/s/ask", json={},
                         headers={"authorization": f"Bearer {TOKEN}"})  # fmt: skip
        assert ok.status_code == 200 and ok.json()["trial"] == 0
    finally:
        service.close()
        store.close()


def test_rebuild_refuses_what_is_not_built_in() -> None:
    spec = {"format_version": 2, "metric": "error", "mode": "min",
            "scheduler": {"class": "os.system", "args": {"command": "touch /tmp/pwned"}}}  # fmt: skip
    with pytest.raises(Exception, match="not a built-in scheduler"):
        rebuild(spec, "s")
    spec["scheduler"] = BasicScheduler(RandomSearcher(SPACE, seed=3)).spec()
    scheduler, objectives = rebuild(spec, "s")
    assert scheduler.spec() == spec["scheduler"] and objectives == (["error"], ["min"])


def test_parse_result() -> None:
    assert parse_result("epoch 1\n0.25\n\n") == (0.25, None)
    assert parse_result('{"error": 0.1, "acc": 0.9}') == ({"error": 0.1, "acc": 0.9}, None)
    assert parse_result("")[1] is not None and parse_result("done")[1] is not None
    assert parse_result("true")[1] is not None


def test_client_against_a_real_server(tmp_path: Path) -> None:
    """hpostore.connect over real HTTP: ask/report/tell, the heartbeat keeps a trial held past
    its lease, a second tell is LeaseLost, and the study is done at its number of trials."""
    import time

    import hpostore
    from hpostore.serve import LeaseLost, serve_study

    tuner = HPOTuner(BasicScheduler(RandomSearcher(SPACE, seed=2)), lambda x: x * x,
                     store=str(tmp_path / "runs.duckdb"), study="py", verbose=False)  # fmt: skip
    server = serve_study(tuner, port=0, lease_s=0.6, block=False)
    try:
        client = hpostore.connect(f"http://127.0.0.1:{server.port}", "py")
        first = client.ask(trials=2)
        assert first is not None and first.report(1, 0.5, acc=0.75) is False
        time.sleep(1.5)  # well past the lease: the heartbeat thread renewed it
        client.tell(first, first.config["x"] ** 2)
        with pytest.raises(LeaseLost, match="not held by this client"):
            client.tell(first.id, 1.0)
        second = client.ask(trials=2)
        assert second is not None and second.id != first.id
        client.tell(second, {"error": 0.5})
        assert client.ask(trials=2) is None
    finally:
        server.stop()
    assert tuner.state.trials[first.id].error == first.config["x"] ** 2
    assert tuner.state.trials[first.id].attempts == 1  # never taken back
    reports = [e for e in tuner.store.events("py", columns=["kind", "payload"]).to_pylist()
               if e["kind"] == "report"]  # fmt: skip
    assert [json.loads(e["payload"]) for e in reports] == [{"metrics": {"error": 0.5,
                                                                        "acc": 0.75}}]  # fmt: skip
    tuner.close()


def test_restart_reclaims_or_hands_out_again(tmp_path: Path) -> None:
    """A server that dies with trials handed out: after restart the worker that held one
    reclaims it with its old lease (a new start, then its tell is accepted); one not reclaimed
    within a lease time goes to the next ask, and its old worker gets 409."""
    path = str(tmp_path / "runs.duckdb")
    make_study(path)
    store = open_store(path)
    clock = Clock()
    first = StudyService(store, lease_s=10, clock=clock)
    old = TestClient(create_app(LogSource(store), extra_routes=routes(first)),
                     base_url="http://127.0.0.1")  # fmt: skip
    a, b = ask(old, worker="wa"), ask(old, worker="wb")
    # the server dies: its tuner is dropped without ending its session; a new one starts
    clock.now = 100.0
    second = StudyService(store, lease_s=10, clock=clock)
    client = TestClient(create_app(LogSource(store), extra_routes=routes(second)),
                        base_url="http://127.0.0.1")  # fmt: skip
    c = ask(client, worker="wc")  # a and b wait for their workers: a new trial
    assert c["trial"] not in (a["trial"], b["trial"])
    assert client.post(f"/api/studies/s/trials/{c['trial']}/tell",
                       json={"lease_id": c["lease_id"], "value": 0.5}).status_code == 200  # fmt: skip
    clock.now = 105.0
    beat = client.post(f"/api/studies/s/trials/{a['trial']}/heartbeat",
                       json={"lease_id": a["lease_id"], "worker": "wa"})  # fmt: skip
    assert beat.status_code == 200, beat.text
    clock.now = 110.5  # b was not reclaimed in time; a's heartbeat renewed its lease
    d = ask(client, worker="wd")
    assert (d["trial"], d["attempt"]) == (b["trial"], 2)
    assert "does not hold it" in refused(client, second, 409,
                                         f"/api/studies/s/trials/{b['trial']}/tell",
                                         json={"lease_id": b["lease_id"], "value": 1.0})  # fmt: skip
    for held in (a, d):
        told = client.post(f"/api/studies/s/trials/{held['trial']}/tell",
                           json={"lease_id": held["lease_id"], "value": 0.5})  # fmt: skip
        assert told.status_code == 200, told.text
    events = store.events("s", columns=["kind", "trial", "worker", "payload"]).to_pylist()
    starts = [(e["trial"], e["worker"]) for e in events if e["kind"] == "start"]
    assert (a["trial"], "wa") in starts  # the reclaim is logged on the worker that held it
    results = [e["trial"] for e in events if e["kind"] == "evaluate"]
    assert sorted(results) == sorted([a["trial"], b["trial"], c["trial"]])
    t = second.tuner("s").state.trials[a["trial"]]
    assert t.status is TrialStatus.FINISHED and t.attempts == 2
    second.close()
    store.close()


def test_an_exhausted_grid_is_done(tmp_path: Path) -> None:
    from hpostore import GridSearcher

    path = str(tmp_path / "runs.duckdb")
    tuner = HPOTuner(BasicScheduler(GridSearcher({"x": [1, 2]})), lambda x: x,
                     store=path, study="s", verbose=False)  # fmt: skip
    tuner.set_study_attr("grid", True)
    tuner.close()
    store = open_store(path)
    service = StudyService(store)
    client = TestClient(create_app(LogSource(store), extra_routes=routes(service)),
                        base_url="http://127.0.0.1")  # fmt: skip
    try:
        held = [ask(client), ask(client)]
        assert sorted(a["config"]["x"] for a in held) == [1, 2]
        assert "wait" in ask(client)  # the grid is spent, but a trial may still come back
        for a in held:
            client.post(f"/api/studies/s/trials/{a['trial']}/tell",
                        json={"lease_id": a["lease_id"], "value": 0.0})  # fmt: skip
        assert ask(client)["done"] is True
    finally:
        service.close()
        store.close()


def test_report_metrics_stop_and_last_report_over_http(tmp_path: Path) -> None:
    """A report's extra metrics are logged; once a report is answered stop the heartbeat says
    so too; ``last_report`` tells the attempt's last reported value (its resource with it)."""
    from hpostore import MedianStoppingScheduler

    path = str(tmp_path / "runs.duckdb")
    scheduler = MedianStoppingScheduler(RandomSearcher(SPACE, seed=1), min_trials=1,
                                        resource_attr="epochs", r_max=5)  # fmt: skip
    tuner = HPOTuner(scheduler, store=path, study="s", verbose=False, mode="max")
    tuner.set_study_attr("created", True)  # logs the study's spec
    tuner.close()
    store = open_store(path)
    service = StudyService(store, lease_s=10, clock=Clock())
    client = TestClient(create_app(LogSource(store), extra_routes=routes(service)),
                        base_url="http://127.0.0.1")  # fmt: skip
    try:
        good, bad = ask(client, worker="w1"), ask(client, worker="w2")
        for a, value in ((good, 0.9), (bad, 0.1)):  # mode max: bad is below the median
            p = f"/api/studies/s/trials/{a['trial']}"
            assert "has not reported" in refused(client, service, 409, f"{p}/tell",
                                                 json={"lease_id": a["lease_id"],
                                                       "last_report": True})  # fmt: skip
            r = client.post(f"{p}/report", json={"lease_id": a["lease_id"], "resource": 1,
                                                 "error": value, "metrics": {"acc": value}})  # fmt: skip
            assert r.status_code == 200 and r.json() == {"stop": a is bad}
            beat = client.post(f"{p}/heartbeat", json={"lease_id": a["lease_id"]}).json()
            assert beat["stop"] is (a is bad)
            assert "not two" in refused(client, service, 400, f"{p}/tell",
                                        json={"lease_id": a["lease_id"], "last_report": True,
                                              "value": 1.0})  # fmt: skip
        p = f"/api/studies/s/trials/{bad['trial']}"
        assert "given twice" in refused(client, service, 400, f"{p}/report",
                                        json={"lease_id": bad["lease_id"], "error": 0.3,
                                              "metrics": {"epochs": 2, "error": 0.2}})  # fmt: skip
        r = client.post(f"{p}/report", json={"lease_id": bad["lease_id"],
                                             "metrics": {"epochs": 2, "error": 0.2}})  # fmt: skip
        assert r.json() == {"stop": True}  # still stopping
        told = client.post(f"{p}/tell", json={"lease_id": bad["lease_id"], "last_report": True})
        assert told.status_code == 200, told.text
        events = store.events("s", columns=["kind", "trial", "resource", "error", "worker",
                                            "payload"]).to_pylist()  # fmt: skip
        mine = [e for e in events if e["trial"] == bad["trial"]]
        assert [e["kind"] for e in mine] == ["suggest", "start", "report", "stop", "report",
                                             "evaluate", "update"]  # fmt: skip
        assert json.loads(mine[2]["payload"]) == {"metrics": {"error": 0.1, "acc": 0.1}}
        assert mine[4]["payload"] is None  # the keyword form, no extras
        assert (mine[5]["error"], mine[5]["resource"], mine[5]["worker"]) == (0.2, 2, "w2")
        assert mine[1]["worker"] == "w2"  # the worker that asked, not the server
    finally:
        service.close()
        store.close()
