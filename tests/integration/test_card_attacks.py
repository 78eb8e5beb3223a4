"""Hostile cards run through executeCard: each is contained with a clean error (or sees
nothing), and the worker keeps serving ordinary cards afterwards."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.conftest import Users
from tests.executor.support import (
    FORKED_MEMORY_HOG,
    daemon_code,
    memory_drop,
    processes_named,
    set_name,
    wait_until,
)
from tests.support.cards import EXECUTE, create_card, follow_card, render, run_card
from tests.support.client import Api
from tests.support.datasets import csv_bytes, import_and_wait
from tests.support.inprocess import InProcess
from tests.support.stack import ROOT, Stack


@pytest.fixture(scope="module")
async def attacker(users: Users) -> dict[str, str]:
    return await users.create("attacker")


@pytest.fixture(scope="module")
async def data(api: Api, attacker: dict[str, str], worker: Any) -> str:
    uploaded, final = await import_and_wait(
        api, attacker["token"], csv_bytes([["x", "y"], [1, 2], [3, 4]])
    )
    assert final["status"] == "SUCCEEDED"
    return str(uploaded["dataset"]["id"])


async def attack(api: Api, token: str, dataset: str, code: str, **options: Any) -> dict[str, Any]:
    card_id = await create_card(api, token, code, [dataset], name="attack")
    return await run_card(api, token, card_id, useCache=False, **options)


async def still_healthy(api: Api, token: str, dataset: str) -> None:
    final = await attack(api, token, dataset, render("return str(int(dataset['y'].sum()))"))
    assert final["status"] == "SUCCEEDED" and final["result"]["html"] == "6"


def report(final: dict[str, Any]) -> dict[str, Any]:
    assert final["status"] == "SUCCEEDED", final
    return json.loads(final["result"]["html"])  # type: ignore[no-any-return]


PROBE_FILES = render("""
import json
seen = {}
for path in params["paths"]:
    try:
        with open(path) as handle:
            seen[path] = handle.read(200)
    except Exception as exc:
        seen[path] = "DENIED " + type(exc).__name__
return json.dumps(seen)
""")


async def test_host_files_and_the_project_are_out_of_reach(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    paths = [
        "/etc/passwd",
        "/etc/shadow",
        str(ROOT / "pyproject.toml"),
        str(ROOT / "src" / "tilegraph" / "settings.py"),
        "/root/.bashrc",
        "/proc/1/environ",
    ]
    seen = report(await attack(api, attacker["token"], data, PROBE_FILES, params={"paths": paths}))
    host_passwd = Path("/etc/passwd").read_text()[:200]  # noqa: ASYNC240
    assert seen["/etc/passwd"] != host_passwd and "root:x:0:0:root:/root" not in seen["/etc/passwd"]
    for path in paths[1:]:
        assert seen[path].startswith("DENIED"), (path, seen[path])
    await still_healthy(api, attacker["token"], data)


async def test_environment_holds_no_secrets(
    api: Api, attacker: dict[str, str], data: str, stack: Stack
) -> None:
    code = render("import os, json\nreturn json.dumps(dict(os.environ))")
    env = report(await attack(api, attacker["token"], data, code))
    assert not [k for k in env if k.startswith(("TILEGRAPH_", "AWS_"))]
    assert stack.env["TILEGRAPH_JWT_SECRET"] not in json.dumps(env)


async def test_no_network_to_redis_or_the_aws_emulator(
    api: Api, attacker: dict[str, str], data: str, stack: Stack
) -> None:
    aws = urlparse(stack.env["TILEGRAPH_AWS_ENDPOINT_URL"])
    code = render("""
import json, _socket
results = {}
for port in params["ports"]:
    try:
        s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect(("127.0.0.1", port))
        results[str(port)] = "CONNECTED"
    except Exception as exc:
        results[str(port)] = type(exc).__name__
return json.dumps(results)
""")
    ports = [6379, stack.redis.port, stack.cache_redis.port, aws.port]
    final = await attack(api, attacker["token"], data, code, params={"ports": ports})
    if final["status"] == "FAILED":
        assert final["error"]["code"] in ("FORBIDDEN_OPERATION", "RUNTIME_ERROR")
    else:
        assert "CONNECTED" not in report(final).values()
    guarded = await attack(api, attacker["token"], data, render("import socket\nreturn 'x'"))
    assert guarded["error"]["code"] == "FORBIDDEN_OPERATION"


@pytest.mark.parametrize("module", ["ctypes", "subprocess"])
async def test_importing_ctypes_or_subprocess_is_forbidden(
    api: Api, attacker: dict[str, str], data: str, module: str
) -> None:
    final = await attack(api, attacker["token"], data, render(f"import {module}\nreturn 'x'"))
    assert final["error"]["code"] == "FORBIDDEN_OPERATION", final


async def test_subprocess_through_importlib_is_refused_or_useless(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    sneaky = render("""
import importlib, json
out = {}
try:
    sp = importlib.import_module("subprocess")
    out["ran"] = sp.run(["cat", "/etc/hostname"], capture_output=True).stdout.decode()
except BaseException as exc:
    out["error"] = type(exc).__name__
return json.dumps(out)
""")
    final = await attack(api, attacker["token"], data, sneaky)
    if final["status"] == "SUCCEEDED":
        assert "ran" not in report(final) or report(final)["ran"] == ""
    else:
        assert final["error"]["code"] in ("FORBIDDEN_OPERATION", "RUNTIME_ERROR")
    await still_healthy(api, attacker["token"], data)


async def test_writing_outside_tmp_fails(api: Api, attacker: dict[str, str], data: str) -> None:
    code = render("""
import json
out = {}
for path in ["/etc/evil", "/usr/evil", str(params["project"]) + "/evil", "/tmp/fine"]:
    try:
        with open(path, "w") as handle:
            handle.write("x")
        out[path] = "WROTE"
    except Exception as exc:
        out[path] = type(exc).__name__
return json.dumps(out)
""")
    out = report(await attack(api, attacker["token"], data, code, params={"project": str(ROOT)}))
    assert out.pop("/tmp/fine") == "WROTE"
    assert "WROTE" not in out.values()
    assert not (ROOT / "evil").exists()


async def test_fork_bomb_memory_and_cpu_hogs_are_contained(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    bomb = render("import os\nwhile True:\n    os.fork()")
    final = await attack(api, attacker["token"], data, bomb)
    assert final["status"] == "FAILED" and final["error"]["code"] in ("RUNTIME_ERROR", "TIMEOUT")
    hog = await attack(
        api, attacker["token"], data, render("block = bytearray(20 * 1024 ** 3)\nreturn 'x'")
    )
    assert hog["error"]["code"] == "MEMORY_LIMIT"
    spin = await attack(api, attacker["token"], data, render("while True:\n    pass"))
    assert spin["error"]["code"] == "TIMEOUT"
    await still_healthy(api, attacker["token"], data)


async def test_a_card_forking_memory_hogs_is_held_to_the_card_limit(
    attacker: dict[str, str], data: str, stack: Stack, inprocess: InProcess
) -> None:
    """Seven children that each touch 1 GiB held 6.8 GiB under a 4 GiB card limit; now the
    card's processes share one limit and the run ends MEMORY_LIMIT. (Its own worker, with
    the production card timeout rather than the test stack's 8 s: what is measured is the
    memory held, not how fast a loaded machine pages in 4 GiB.)"""
    env = {
        "TILEGRAPH_QUEUE_NAME": f"tilegraph:test:{secrets.token_hex(4)}",
        "TILEGRAPH_CARD_TIMEOUT_SECONDS": "30",
    }
    server = await inprocess.start_api(env)
    await inprocess.start_worker(env)
    own = Api(server.url, server.ws_url, server.transport)
    limit = stack.settings().card_memory_bytes
    try:
        with memory_drop() as drop:
            final = await attack(own, attacker["token"], data, FORKED_MEMORY_HOG)
        assert final["status"] == "FAILED" and final["error"] == {
            **final["error"],
            "code": "MEMORY_LIMIT",
        }, final
        assert drop[0] <= limit + 512 * 2**20, f"the host lost {drop[0] / 2**30:.2f} GiB"
        await still_healthy(own, attacker["token"], data)
    finally:
        await own.close()
        await inprocess.stop()


async def test_printing_100_mb_floods_nothing(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    code = render(
        "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    print(chunk)\n"
        "    sys.stderr.write(chunk)\nreturn 'done'"
    )
    final = await attack(api, attacker["token"], data, code)
    assert final["status"] == "SUCCEEDED" and final["result"]["html"] == "done"


async def test_background_processes_do_not_survive_the_run(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    marker = f"tg-bg-{secrets.token_hex(2)}"
    final = await attack(
        api, attacker["token"], data, daemon_code(marker, "return 'left one behind'")
    )
    assert final["status"] == "SUCCEEDED"
    await wait_until(lambda: processes_named(marker) == [])


async def test_another_jobs_temp_files_are_unreadable(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    nonce = secrets.token_hex(8)
    marker = f"tg-victim-{secrets.token_hex(2)}"
    victim = render(f"""
import os, time, numpy
with open("/tmp/secret.txt", "w") as handle:
    handle.write("{nonce}")
{set_name(marker)}
time.sleep(30)
return "victim"
""")
    victim_card = await create_card(api, attacker["token"], victim, [data], name="victim")
    started = await api.ok(
        EXECUTE, {"i": {"id": victim_card, "useCache": False}}, token=attacker["token"]
    )
    victim_run = started["executeCard"]["execution"]["id"]
    await wait_until(lambda: bool(processes_named(marker)), timeout=30)
    thief = render("""
import glob, json, os
found = []
for pattern in ["/tmp/*", "/dev/shm/*", "/var/tmp/*", "/proc/*/root/tmp/*", "/proc/*/cwd/*"]:
    for path in glob.glob(pattern):
        try:
            with open(path) as handle:
                found.append(handle.read(100))
        except Exception:
            pass
return json.dumps(found)
""")
    stolen = report(await attack(api, attacker["token"], data, thief))
    assert nonce not in json.dumps(stolen)
    await api.ok(
        "mutation($id: ID!) { cancelExecution(input: {id: $id}) { ok } }",
        {"id": victim_run},
        token=attacker["token"],
    )
    final = (await follow_card(api, attacker["token"], victim_run))[-1]
    assert final["status"] == "CANCELLED"


async def test_tampering_with_the_zygote_changes_nothing(
    api: Api, attacker: dict[str, str], data: str
) -> None:
    code = render("""
import json, os, signal
out = {}
for pid in (1, os.getppid()):
    for sig in (signal.SIGKILL, signal.SIGSTOP):
        try:
            os.kill(pid, sig)
            out[f"{pid}:{sig}"] = "SENT"
        except Exception as exc:
            out[f"{pid}:{sig}"] = type(exc).__name__
try:
    os.kill(-1, signal.SIGKILL)
except Exception as exc:
    out["all"] = type(exc).__name__
return json.dumps(out)
""")
    final = await attack(api, attacker["token"], data, code)
    assert final["status"] in ("SUCCEEDED", "FAILED")
    for _ in range(3):
        await still_healthy(api, attacker["token"], data)
    await asyncio.gather(*(still_healthy(api, attacker["token"], data) for _ in range(4)))
