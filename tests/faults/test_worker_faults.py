"""Outages lose nothing: workers stopped (SIGTERM), killed, or cut off from Redis, and Redis
itself killed and restarted empty. Workers run as processes of their own (`tilegraph
worker`), so they can be signalled and killed; each test says what was lost (nothing) and
prints how long recovery took."""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import Users
from tests.support.cards import create_card, follow_card, render
from tests.support.client import Api
from tests.support.dashboards import create_dashboard
from tests.support.datasets import big_csv, csv_bytes, import_and_wait, upload
from tests.support.inprocess import InProcess
from tests.support.smtp import SmtpServer
from tests.support.stack import RedisServer, Stack, free_port, kill_hard, wait_for_log
from tests.support.transforms import create_transform, later, tick_here

EXECUTE = """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false}) {
  execution { id } } }"""
STATUSES = """query($ids: [ID!]!) { nodes(ids: $ids) { id
  ... on Execution { status error { code message } } } }"""
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


@dataclass
class Deployment:
    api: Api
    env: dict[str, str]
    redis: RedisServer | None = None


@pytest.fixture
async def deployment(stack: Stack, inprocess: InProcess) -> AsyncIterator[Deployment]:
    """An API (in the test's loop) on a queue and a Redis of its own, for workers started as
    processes; the Redis is this test's to kill."""
    redis = RedisServer(free_port(), stack.workdir / f"redis-{secrets.token_hex(3)}")
    redis.start()
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:fault:{secrets.token_hex(4)}",
        "TILEGRAPH_REDIS_URL": redis.url,
        "TILEGRAPH_MAX_QUEUED_CARDS_PER_USER": "1000",
        "TILEGRAPH_SANDBOX_SLOTS": "2",
        "TILEGRAPH_WORKER_STOP_GRACE_SECONDS": "0.5",
    }
    server = await inprocess.start_api(env)
    api = Api(server.url, server.ws_url)
    try:
        yield Deployment(api, env, redis)
    finally:
        await api.close()
        await inprocess.stop()
        redis.stop()


async def _card(api: Api, token: str, body: str) -> str:
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1]]))
    assert final["status"] == "SUCCEEDED", final
    return await create_card(api, token, render(body), [uploaded["dataset"]["id"]])


async def _queue(api: Api, token: str, card_id: str, times: int) -> list[str]:
    runs = await asyncio.gather(
        *(api.ok(EXECUTE, {"id": card_id}, token=token) for _ in range(times))
    )
    return [r["executeCard"]["execution"]["id"] for r in runs]


async def _statuses(api: Api, token: str, runs: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(runs), 100):
        data = await api.ok(STATUSES, {"ids": runs[start : start + 100]}, token=token)
        found.update({n["id"]: n for n in data["nodes"] if n})
    return found


async def _wait(
    api: Api, token: str, runs: list[str], *, done: int | None = None, timeout: float = 90
) -> dict[str, dict[str, Any]]:
    """Polls until `done` runs (default: all) are terminal."""
    want = len(runs) if done is None else done
    deadline = time.monotonic() + timeout
    while True:
        try:
            states = await _statuses(api, token, runs)
        except Exception:  # the API may refuse while its Redis is away
            states = {}
        if sum(s["status"] in TERMINAL for s in states.values()) >= want:
            return states
        if time.monotonic() > deadline:
            counts = Counter(s["status"] for s in states.values())
            raise AssertionError(f"only {dict(counts)} after {timeout}s")
        await asyncio.sleep(0.2)


def _succeeded_once(states: dict[str, dict[str, Any]], runs: list[str], log_text: str) -> None:
    counts = Counter(s["status"] for s in states.values())
    assert counts == {"SUCCEEDED": len(runs)}, (counts, [s for s in states.values() if s["error"]])
    # Exactly once: each run's job completed once across every worker ("●" marks a success).
    completed = Counter(
        run for line in log_text.splitlines() if "● " in line for run in runs if run in line
    )
    assert all(completed[r] <= 1 for r in runs), [r for r in runs if completed[r] > 1]


def _logs(stack: Stack, *names: str) -> str:
    return "".join((stack.workdir / f"{n}.log").read_text(errors="replace") for n in names)


async def test_a_worker_stopped_with_sigterm_halfway_hands_its_runs_to_the_next(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """20 runs of 1.2 s; the worker gets SIGTERM once 10 have ended (grace 0.5 s, so the
    runs it holds are still going) and another worker starts: every run ends SUCCEEDED,
    exactly once; none CANCELLED. (500 runs: bench/fault_sigterm.py.)"""
    owner = await users.create("sigterm")
    api, env = deployment.api, deployment.env
    tag = secrets.token_hex(3)
    first = stack.start_worker(f"sigterm-a-{tag}", env)
    card = await _card(api, owner["token"], "import time\ntime.sleep(1.2)\nreturn 'ok'")
    runs = await _queue(api, owner["token"], card, 20)
    await _wait(api, owner["token"], runs, done=10)
    stopped = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    print(f"SIGTERM → worker exited in {time.monotonic() - stopped:.2f} s")
    stack.start_worker(f"sigterm-b-{tag}", env)
    states = await _wait(api, owner["token"], runs)
    print(f"SIGTERM → all 20 runs terminal in {time.monotonic() - stopped:.2f} s")
    logs = _logs(stack, f"sigterm-a-{tag}", f"sigterm-b-{tag}")
    _succeeded_once(states, runs, logs)
    assert "execution_handed_back" in _logs(stack, f"sigterm-a-{tag}")  # it held runs


async def test_a_three_second_redis_outage_does_not_stop_the_worker(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """Redis goes away for 3 s under a running worker; the worker stays up, reconnects,
    and runs what is queued afterwards."""
    assert deployment.redis is not None
    owner = await users.create("outage")
    api, env = deployment.api, deployment.env
    tag = secrets.token_hex(3)
    worker = stack.start_worker(f"outage-{tag}", env)
    card = await _card(api, owner["token"], "return 'after'")
    before = await _queue(api, owner["token"], card, 2)
    await _wait(api, owner["token"], before)
    deployment.redis.stop()
    down = time.monotonic()
    await asyncio.sleep(3)  # the outage itself, not a synchronisation
    deployment.redis.start()
    wait_for_log(stack.workdir / f"outage-{tag}.log", "redis_unavailable", timeout=5)
    assert worker.poll() is None, "the worker exited during the outage"
    back = time.monotonic()
    after = await _queue(api, owner["token"], card, 4)
    states = await _wait(api, owner["token"], after, timeout=60)
    print(
        f"Redis back → 4 new runs SUCCEEDED in {time.monotonic() - back:.2f} s "
        f"(outage {back - down:.1f} s)"
    )
    _succeeded_once(states, after, _logs(stack, f"outage-{tag}"))
    assert worker.poll() is None

    # A worker started while Redis is away waits for it (arq alone gives up after 5 s).
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    deployment.redis.stop()
    late = stack.spawn([sys.executable, "-m", "tilegraph.cli", "worker"], f"late-{tag}", env)
    late_log = stack.workdir / f"late-{tag}.log"
    deadline = time.monotonic() + 30
    while late_log.read_text().count("redis_unavailable") < 6:  # ~6 s of retries
        assert late.poll() is None, "the worker gave up waiting for Redis"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    deployment.redis.start()
    wait_for_log(late_log, "worker_started", process=late, timeout=30)
    last = await _queue(api, owner["token"], card, 1)
    _succeeded_once(await _wait(api, owner["token"], last), last, late_log.read_text())


async def test_redis_killed_and_restarted_empty_loses_no_queued_run(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """kill -9 Redis with 12 runs queued and some running, restart it empty: the sweepers
    of two workers queue every lost run again, and each ends SUCCEEDED exactly once."""
    assert deployment.redis is not None and deployment.redis.process is not None
    owner = await users.create("redis-lost")
    api, env = deployment.api, deployment.env
    tag = secrets.token_hex(3)
    stack.start_worker(f"lost-a-{tag}", env)
    stack.start_worker(f"lost-b-{tag}", env)
    card = await _card(api, owner["token"], "import time\ntime.sleep(0.5)\nreturn 'ok'")
    runs = await _queue(api, owner["token"], card, 12)
    # A subscriber to the last run, open across the outage: the API's fan-out resubscribes.
    followed = asyncio.create_task(follow_card(api, owner["token"], runs[-1]))
    await _wait(api, owner["token"], runs, done=1)
    kill_hard(deployment.redis.process)
    killed = time.monotonic()
    deployment.redis.process = None
    deployment.redis.start()  # empty: the tests' Redis keeps nothing on disk
    states = await _wait(api, owner["token"], runs, timeout=60)
    print(f"Redis kill -9 → all 12 runs terminal in {time.monotonic() - killed:.2f} s")
    _succeeded_once(states, runs, _logs(stack, f"lost-a-{tag}", f"lost-b-{tag}"))
    requeued = _logs(stack, f"lost-a-{tag}", f"lost-b-{tag}").count("execution_requeued")
    print(f"re-enqueued by the sweepers: {requeued}")
    last = (await asyncio.wait_for(followed, 60))[-1]
    assert last["status"] == "SUCCEEDED", last


IMPORT_STATE = "query($id: ID!) { datasetImport(id: $id) { status progress } }"
REIMPORT = """mutation($id: ID!) { reimportDataset(input: {id: $id, force: true}) {
  import { id } } }"""
PREVIEW = "query($id: ID!) { dataset(id: $id) { version preview(limit: 5) { rows } } }"


async def _import_state(api: Api, token: str, import_id: str) -> dict[str, Any]:
    data = await api.ok(IMPORT_STATE, {"id": import_id}, token=token)
    return data["datasetImport"]  # type: ignore[no-any-return]


async def _until(check: Any, *, timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, (
            f"timed out after {timeout} s waiting for {what or check}"
        )
        await asyncio.sleep(0.1)


async def test_kill_9_mid_import_loses_no_version_and_leaves_no_work_dir(
    stack: Stack, deployment: Deployment, users: Users, s3: Any, source_bucket: str, tmp_path: Any
) -> None:
    """A worker killed while it ingests a re-import: the run ends WORKER_LOST, version 1 still
    serves, the next worker removes the dead one's work directory (the size of the source)
    at start, and a re-run publishes a new version. While it ran, the `datasetImport` query
    showed the progress its subscription showed (it stayed at 0.0 before)."""
    owner = await users.create("kill-import")
    token = owner["token"]
    work = tmp_path / "work"
    work.mkdir()
    env = {**deployment.env, "TILEGRAPH_WORK_DIR": str(work)}
    api = deployment.api
    tag = secrets.token_hex(3)
    doomed = stack.start_worker(f"import-a-{tag}", env)
    key = f"sources/{secrets.token_hex(4)}.csv"
    s3.put_object(Bucket=source_bucket, Key=key, Body=csv_bytes([["id", "name"], [1, "a"]]))
    first = await api.ok(
        """mutation($i: ImportDatasetFromS3Input!) { importDatasetFromS3(input: $i) {
          dataset { id } import { id } } }""",
        {"i": {"name": "kept", "bucket": source_bucket, "key": key}},
        token=token,
    )
    dataset_id = first["importDatasetFromS3"]["dataset"]["id"]
    first_id = first["importDatasetFromS3"]["import"]["id"]
    await _until(
        lambda: _status_is(api, token, first_id, "SUCCEEDED"), timeout=60, what="the first import"
    )
    s3.put_object(Bucket=source_bucket, Key=key, Body=big_csv(48))
    data = await api.ok(REIMPORT, {"id": dataset_id}, token=token)
    import_id = data["reimportDataset"]["import"]["id"]

    async def ingesting() -> dict[str, Any] | None:
        state = await _import_state(api, token, import_id)
        assert state["status"] in {"QUEUED", "RUNNING"}, f"ended before it could be killed: {state}"
        ingest = state["status"] == "RUNNING" and 0.1 < state["progress"] < 0.8
        return state if ingest else None

    running = await _until(ingesting, timeout=90, what="the re-import to ingest")
    assert 0.1 < running["progress"] < 1, running  # the stored progress follows the run
    assert [p.name for p in work.iterdir() if p.name.startswith("tg-import-")]
    kill_hard(doomed)
    killed = time.monotonic()
    stack.start_worker(f"import-b-{tag}", env)
    assert not [p for p in work.iterdir() if p.name.startswith("tg-import-")]  # swept at start
    lost = await _until(
        lambda: _status_is(api, token, import_id, "FAILED"), timeout=60, what="WORKER_LOST"
    )
    print(f"import kill -9 → WORKER_LOST in {time.monotonic() - killed:.2f} s")
    assert lost
    preview = await api.ok(PREVIEW, {"id": dataset_id}, token=token)
    assert preview["dataset"]["version"] == 1
    assert preview["dataset"]["preview"]["rows"] == [[1, "a"]]
    again = await api.ok(REIMPORT, {"id": dataset_id}, token=token)
    rerun = again["reimportDataset"]["import"]["id"]
    assert await _until(
        lambda: _status_is(api, token, rerun, "SUCCEEDED"), timeout=120, what="the re-run"
    )
    after = await api.ok(PREVIEW, {"id": dataset_id}, token=token)
    assert after["dataset"]["version"] > 1  # the killed run may have used up a number


async def _status_is(api: Api, token: str, import_id: str, status: str) -> bool:
    state = await _import_state(api, token, import_id)
    assert state["status"] in {"QUEUED", "RUNNING", status}, state
    return bool(state["status"] == status)


async def test_kill_9_mid_card_ends_worker_lost_and_a_rerun_succeeds(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    owner = await users.create("kill-card")
    api, env = deployment.api, deployment.env
    tag = secrets.token_hex(3)
    doomed = stack.start_worker(f"card-a-{tag}", env)
    card = await _card(
        api, owner["token"], "import time\ntime.sleep(params.get('s', 0))\nreturn 'done'"
    )
    started = await api.ok(
        """mutation($id: ID!) { executeCard(input: {id: $id, useCache: false, params: {s: 30}})
        { execution { id } } }""",
        {"id": card},
        token=owner["token"],
    )
    run = started["executeCard"]["execution"]["id"]

    async def running() -> bool:
        states = await _statuses(api, owner["token"], [run])
        return bool(states[run]["status"] == "RUNNING")

    await _until(running, timeout=60)
    kill_hard(doomed)
    killed = time.monotonic()
    stack.start_worker(f"card-b-{tag}", env)
    (state,) = (await _wait(api, owner["token"], [run], timeout=30)).values()
    print(f"card kill -9 → WORKER_LOST in {time.monotonic() - killed:.2f} s")
    assert state["status"] == "FAILED" and state["error"]["code"] == "WORKER_LOST", state
    (rerun,) = await _queue(api, owner["token"], card, 1)
    (final,) = (await _wait(api, owner["token"], [rerun])).values()
    assert final["status"] == "SUCCEEDED", final


async def test_a_worker_stopped_mid_import_hands_the_import_to_the_next(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """Imports wait in arq's own line, not a user's queue: SIGTERM mid-ingest (grace 0: the
    import cannot finish in it) puts it back to QUEUED, and the next worker runs it."""
    owner = await users.create("stop-import")
    token = owner["token"]
    api = deployment.api
    env = {**deployment.env, "TILEGRAPH_WORKER_STOP_GRACE_SECONDS": "0"}
    tag = secrets.token_hex(3)
    first = stack.start_worker(f"stop-import-a-{tag}", env)
    uploaded = await upload(api, token, big_csv(48))
    import_id = uploaded["import"]["id"]

    async def ingesting() -> bool:
        state = await _import_state(api, token, import_id)
        return bool(state["status"] == "RUNNING" and 0.1 < state["progress"] < 0.6)

    await _until(ingesting)
    stopped = time.monotonic()
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0
    assert (await _import_state(api, token, import_id))["status"] == "QUEUED"
    stack.start_worker(f"stop-import-b-{tag}", env)
    assert await _until(lambda: _status_is(api, token, import_id, "SUCCEEDED"), timeout=90)
    print(f"import SIGTERM → SUCCEEDED on the next worker in {time.monotonic() - stopped:.2f} s")
    assert "execution_handed_back" in _logs(stack, f"stop-import-a-{tag}")


async def test_redis_restarted_empty_requeues_every_kind_of_queued_run_once(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """An import, a transform run and card runs wait with no worker up; Redis is killed and
    restarted empty; the sweepers of two workers started then queue each again exactly once,
    and each ends SUCCEEDED."""
    assert deployment.redis is not None and deployment.redis.process is not None
    owner = await users.create("redis-kinds")
    token = owner["token"]
    api, env = deployment.api, deployment.env
    tag = secrets.token_hex(3)
    setup = stack.start_worker(f"kinds-setup-{tag}", env)
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1]]))
    assert final["status"] == "SUCCEEDED"
    dataset = uploaded["dataset"]["id"]
    card = await create_card(api, token, render("return 'ok'"), [dataset])
    transform = await create_transform(api, token, "result = df_0", [dataset])
    setup.send_signal(signal.SIGTERM)
    assert setup.wait(30) == 0
    waiting = (await upload(api, token, csv_bytes([["b"], [2]])))["import"]["id"]
    ran = await api.ok(
        "mutation($id: ID!) { executeTransform(input: {id: $id}) { execution { id } } }",
        {"id": transform["id"]},
        token=token,
    )
    runs = [waiting, ran["executeTransform"]["execution"]["id"], *await _queue(api, token, card, 4)]
    assert {s["status"] for s in (await _statuses(api, token, runs)).values()} == {"QUEUED"}
    kill_hard(deployment.redis.process)
    deployment.redis.process = None
    deployment.redis.start()  # empty
    back = time.monotonic()
    stack.start_worker(f"kinds-a-{tag}", env)
    stack.start_worker(f"kinds-b-{tag}", env)
    states = await _wait(api, token, runs, timeout=60)
    print(f"Redis back empty → 6 runs of 3 kinds SUCCEEDED in {time.monotonic() - back:.2f} s")
    logs = _logs(stack, f"kinds-a-{tag}", f"kinds-b-{tag}")
    _succeeded_once(states, runs, logs)
    requeued = Counter(
        run
        for line in logs.splitlines()
        if "execution_requeued" in line
        for run in runs
        if run in line
    )
    assert all(requeued[r] == 1 for r in runs), requeued


async def test_a_worker_started_before_its_aws_endpoint_waits_for_it(stack: Stack) -> None:
    """DynamoDB and S3 (here the emulator) answer only 3 s after the worker starts: the worker
    waits and starts then, rather than exiting."""
    port = free_port()
    tag = secrets.token_hex(3)
    env = {
        "TILEGRAPH_AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:fault:{tag}",
    }
    worker = stack.spawn([sys.executable, "-m", "tilegraph.cli", "worker"], f"noaws-{tag}", env)
    log = stack.workdir / f"noaws-{tag}.log"
    wait_for_log(log, "store_unavailable", process=worker, timeout=30)
    await asyncio.sleep(3)  # the outage itself, not a synchronisation
    assert worker.poll() is None, "the worker exited while its AWS endpoint was away"
    emulator = stack.spawn(
        [sys.executable, "-m", "tilegraph.local.emulator", "--port", str(port)], f"aws-{tag}"
    )
    back = time.monotonic()
    try:
        wait_for_log(log, "worker_started", process=worker, timeout=60)
        print(f"AWS endpoint up → worker started in {time.monotonic() - back:.2f} s")
    finally:
        kill_hard(worker)
        kill_hard(emulator)


IMPORT_RESULT = """query($id: ID!) { datasetImport(id: $id) {
  status rowsProcessed error { code } } }"""
IMPORT_AUDIT = """query($t: String!) { auditLogs(filter: {targetId: $t, eventType: DATASET_IMPORTED}) {
  edges { node { details } } } }"""


async def _publish_then_die(
    stack: Stack, env: dict[str, str], import_id: str, dataset_id: str, *, flip: bool
) -> None:
    """What a worker does up to the moment it is killed, run here with the product's own
    steps: it takes the queued import, announces the version it publishes, uploads the files
    and (with `flip`) flips the published version; then it stops, writing no end and no
    heartbeat, as a kill -9 at that instant would leave things."""
    import pyarrow as pa

    from tilegraph.jobs.lifecycle import ExecutionRun, Runtime
    from tilegraph.jobs.publishing import publish_files
    from tilegraph.jobs.transforms import column_specs, write_parquet
    from tilegraph.services.registry import Services

    services = await Services.open(stack.settings(env))
    try:
        run = await ExecutionRun.begin(
            Runtime.of(services), services.repos.imports.executions, import_id
        )
        assert run is not None
        table = pa.table({"a": [2, 3]})
        out = stack.workdir / f"publish-{import_id}"
        out.mkdir()
        write_parquet(table, out / "part-00000.parquet")
        result = {"rows_processed": 2, "bytes_processed": 8}
        if flip:
            await publish_files(
                services,
                dataset_id,
                out,
                ["part-00000.parquet"],
                columns=column_specs(table),
                row_count=2,
                published_by=None,
                run=run,
                result=result,
                version_key="result_version",
            )
        else:  # killed while uploading: announced, never flipped
            version = await services.repos.datasets.reserve_version(dataset_id)
            await run.announce_publish(dataset_id, version, {**result, "result_version": version})
    finally:
        await services.close()


async def test_a_worker_killed_right_after_its_flip_leaves_a_succeeded_import(
    stack: Stack, deployment: Deployment, users: Users, admin_token: str
) -> None:
    """Between flipping the published version and writing its own success, a worker can be
    killed: the new version is live, so the import must end SUCCEEDED with that version and
    its audit entry, not WORKER_LOST. A worker killed before its flip still ends WORKER_LOST,
    with the dataset unchanged."""
    owner = await users.create("flip-kill")
    token, api = owner["token"], deployment.api
    flipped = await upload(api, token, csv_bytes([["a"], [1]]), name="flipped")
    unflipped = await upload(api, token, csv_bytes([["a"], [1]]), name="unflipped")
    for uploaded, flip in ((flipped, True), (unflipped, False)):
        await _publish_then_die(
            stack, deployment.env, uploaded["import"]["id"], uploaded["dataset"]["id"], flip=flip
        )
    died = time.monotonic()
    # The next worker's sweeper finds both runs RUNNING with no heartbeat; their jobs, still
    # queued, find them started and do nothing.
    stack.start_worker(f"flip-{secrets.token_hex(3)}", deployment.env)

    async def ended(import_id: str) -> dict[str, Any] | None:
        data = await api.ok(IMPORT_RESULT, {"id": import_id}, token=token)
        state: dict[str, Any] = data["datasetImport"]
        return state if state["status"] in TERMINAL else None

    done = await _until(lambda: ended(flipped["import"]["id"]), timeout=30)
    print(f"worker lost after its flip → SUCCEEDED in {time.monotonic() - died:.2f} s")
    assert done == {"status": "SUCCEEDED", "rowsProcessed": 2, "error": None}
    live = await api.ok(PREVIEW, {"id": flipped["dataset"]["id"]}, token=token)
    assert live["dataset"] == {"version": 1, "preview": {"rows": [[2], [3]]}}
    audit = await api.ok(IMPORT_AUDIT, {"t": flipped["dataset"]["id"]}, token=admin_token)
    details = [e["node"]["details"] for e in audit["auditLogs"]["edges"]]
    assert [(d["importId"], d["version"], d["rows"]) for d in details] == [
        (flipped["import"]["id"], 1, 2)
    ]

    lost = await _until(lambda: ended(unflipped["import"]["id"]), timeout=30)
    assert lost["status"] == "FAILED" and lost["error"] == {"code": "WORKER_LOST"}, lost
    untouched = await api.ok(PREVIEW, {"id": unflipped["dataset"]["id"]}, token=token)
    assert untouched["dataset"]["version"] == 0


TRANSFORM_OUTPUT = """query($id: ID!) { transform(id: $id) {
  outputDataset { id version preview(limit: 5) { rows } } } }"""
UPDATE_CODE = """mutation($id: ID!, $code: String!) { updateTransform(input: {id: $id, code: $code})
  { transform { id } } }"""
EXECUTE_TRANSFORM = """mutation($id: ID!) { executeTransform(input: {id: $id}) {
  execution { id } } }"""


async def test_kill_9_mid_transform_keeps_the_last_output_and_a_rerun_succeeds(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """A worker killed while a transform runs: the run ends WORKER_LOST, the output dataset
    still serves the previous run's version, the transform's run lock is released (a new
    run is accepted), and that run publishes the next version."""
    owner = await users.create("kill-transform")
    token, api, env = owner["token"], deployment.api, deployment.env
    tag = secrets.token_hex(3)
    doomed = stack.start_worker(f"transform-a-{tag}", env)
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1], [2]]))
    assert final["status"] == "SUCCEEDED"
    transform = await create_transform(api, token, "result = df_0", [uploaded["dataset"]["id"]])
    first = (await api.ok(EXECUTE_TRANSFORM, {"id": transform["id"]}, token=token))[
        "executeTransform"
    ]["execution"]["id"]
    assert (await _wait(api, token, [first]))[first]["status"] == "SUCCEEDED"
    slow = "import time\ntime.sleep(60)\nresult = df_0[df_0['a'] > 1]"
    await api.ok(UPDATE_CODE, {"id": transform["id"], "code": slow}, token=token)
    run = (await api.ok(EXECUTE_TRANSFORM, {"id": transform["id"]}, token=token))[
        "executeTransform"
    ]["execution"]["id"]

    async def running() -> bool:
        return bool((await _statuses(api, token, [run]))[run]["status"] == "RUNNING")

    await _until(running, timeout=60)
    kill_hard(doomed)
    killed = time.monotonic()
    stack.start_worker(f"transform-b-{tag}", env)
    (state,) = (await _wait(api, token, [run], timeout=30)).values()
    print(f"transform kill -9 → WORKER_LOST in {time.monotonic() - killed:.2f} s")
    assert state["status"] == "FAILED" and state["error"]["code"] == "WORKER_LOST", state
    output = (await api.ok(TRANSFORM_OUTPUT, {"id": transform["id"]}, token=token))["transform"]
    assert output["outputDataset"]["version"] == 1
    assert output["outputDataset"]["preview"]["rows"] == [[1], [2]]
    fast = "result = df_0[df_0['a'] > 1]"
    await api.ok(UPDATE_CODE, {"id": transform["id"], "code": fast}, token=token)
    rerun = (await api.ok(EXECUTE_TRANSFORM, {"id": transform["id"]}, token=token))[
        "executeTransform"
    ]["execution"]["id"]
    assert (await _wait(api, token, [rerun]))[rerun]["status"] == "SUCCEEDED"
    after = (await api.ok(TRANSFORM_OUTPUT, {"id": transform["id"]}, token=token))["transform"]
    assert after["outputDataset"]["version"] > 1
    assert after["outputDataset"]["preview"]["rows"] == [[2]]


async def test_a_schedule_tick_during_a_redis_outage_runs_each_due_run_once_after(
    stack: Stack, deployment: Deployment, users: Users
) -> None:
    """Redis is killed; a scheduler tick (the CLI's, or a worker's that Redis left mid-way)
    still records the due run QUEUED and moves the schedule on; Redis comes back empty and
    the sweeper enqueues the run, which succeeds once; a later tick as of the same moment
    queues nothing more (the missed runs are caught up once)."""
    assert deployment.redis is not None and deployment.redis.process is not None
    owner = await users.create("tick-outage")
    token, api, env = owner["token"], deployment.api, deployment.env
    tag = secrets.token_hex(3)
    setup = stack.start_worker(f"tick-setup-{tag}", env)
    uploaded, final = await import_and_wait(api, token, csv_bytes([["a"], [1]]))
    assert final["status"] == "SUCCEEDED"
    setup.send_signal(signal.SIGTERM)
    assert setup.wait(30) == 0
    transform = await create_transform(
        api, token, "result = df_0", [uploaded["dataset"]["id"]], cron="* * * * *", enabled=True
    )
    kill_hard(deployment.redis.process)
    deployment.redis.process = None
    at = later(10)  # ten runs missed
    assert transform["id"] in await tick_here(stack, at, env)
    deployment.redis.start()  # empty
    back = time.monotonic()
    stack.start_worker(f"tick-a-{tag}", env)
    stack.start_worker(f"tick-b-{tag}", env)
    runs = await _transform_runs(api, token, transform["id"])
    assert [r["triggeredBy"] for r in runs] == ["SCHEDULE"]
    states = await _wait(api, token, [runs[0]["id"]], timeout=60)
    print(f"Redis back empty → the scheduled run SUCCEEDED in {time.monotonic() - back:.2f} s")
    assert states[runs[0]["id"]]["status"] == "SUCCEEDED"
    assert transform["id"] not in await tick_here(stack, at, env)
    assert len(await _transform_runs(api, token, transform["id"])) == 1


async def _transform_runs(api: Api, token: str, transform_id: str) -> list[dict[str, Any]]:
    data = await api.ok(
        """query($id: ID!) { transform(id: $id) { executions(first: 20) {
          nodes { id triggeredBy } } } }""",
        {"id": transform_id},
        token=token,
    )
    return data["transform"]["executions"]["nodes"]  # type: ignore[no-any-return]


DELIVERY = (
    """mutation($i: CreateDeliveryInput!) { createDelivery(input: $i) { delivery { id } } }"""
)
DELIVERY_RUNS = """query($id: ID!) { node(id: $id) { ... on Delivery { runs(first: 10) {
  nodes { id status dueAt error { code } } } } } }"""


async def test_kill_9_mid_delivery_ends_worker_lost_and_the_next_minute_runs(
    stack: Stack, deployment: Deployment, users: Users, api: Api, worker: Any
) -> None:
    """A worker killed while a delivery runs its cards: the run ends WORKER_LOST, its lock
    goes with it, and the next minute's run sends."""
    owner = await users.create("kill-delivery")
    token = owner["token"]
    smtp = SmtpServer()
    smtp.start()
    try:
        env = {
            **deployment.env,
            "TILEGRAPH_SMTP_HOST": "127.0.0.1",
            "TILEGRAPH_SMTP_PORT": str(smtp.port),
            "TILEGRAPH_CARD_TIMEOUT_SECONDS": "60",
        }
        uploaded, final = await import_and_wait(api, token, csv_bytes([["v"], [1]]))
        assert final["status"] == "SUCCEEDED"
        card = await create_card(
            api,
            token,
            render("import time\ntime.sleep(params.get('s', 0))\nreturn 'done'"),
            [uploaded["dataset"]["id"]],
            params={"s": 30},
        )
        dashboard = await create_dashboard(api, token, name="Nightly", card_ids=[card])
        tag = secrets.token_hex(3)
        doomed = stack.start_worker(f"delivery-a-{tag}", env)
        await asyncio.to_thread(
            wait_for_log, stack.workdir / f"delivery-a-{tag}.log", "worker_started"
        )
        created = await deployment.api.ok(
            DELIVERY,
            {
                "i": {
                    "dashboardId": dashboard["id"],
                    "name": "every minute",
                    "scheduleCron": "* * * * *",
                    "channel": "EMAIL",
                    "recipients": ["night@example.com"],
                }
            },
            token=token,
        )
        delivery = created["createDelivery"]["delivery"]["id"]
        # At once, as of tomorrow: the schedule moves past any tick of the real clock (a
        # worker's own), so only this test's ticks queue its runs.
        first_minute = (later(24 * 60)).replace(second=5, microsecond=0)
        assert delivery in await tick_here(stack, first_minute, env)

        async def runs() -> list[dict[str, Any]]:
            data = await deployment.api.ok(DELIVERY_RUNS, {"id": delivery}, token=token)
            return list(data["node"]["runs"]["nodes"])

        async def running() -> dict[str, Any] | None:
            return next((r for r in await runs() if r["status"] == "RUNNING"), None)

        lost_run = await _until(running, timeout=60, what="the delivery to run")
        kill_hard(doomed)
        stack.start_worker(f"delivery-b-{tag}", env)

        async def lost() -> dict[str, Any] | None:
            state = next(r for r in await runs() if r["id"] == lost_run["id"])
            return state if state["status"] == "FAILED" else None

        state = await _until(lost, timeout=30, what="WORKER_LOST")
        assert state["error"]["code"] == "WORKER_LOST", state
        await api.ok(
            """mutation($id: ID!) { updateCard(input: {id: $id, params: {s: 0}}) { card { id } } }""",
            {"id": card},
            token=token,
        )
        assert delivery in await tick_here(stack, first_minute + timedelta(minutes=1), env)
        (message,) = await smtp.wait_for(1, timeout=60)
        assert "Nightly" in message["Subject"]

        async def sent() -> dict[str, Any] | None:
            newest = (await runs())[0]
            return newest if newest["status"] in TERMINAL else None

        newest = await _until(sent, timeout=30, what="the next minute's run to end")
        assert newest["status"] == "SUCCEEDED" and newest["dueAt"] != state["dueAt"]
    finally:
        smtp.stop()
