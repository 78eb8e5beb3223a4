"""Hostile code: each attempt is contained (a clean error, or a result proving it saw nothing)
and the sandbox keeps serving the next job."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from tilegraph.domain.executions import ExecutionErrorCode
from tilegraph.executor import Sandbox, SandboxResult, TransformJob

from .support import (
    FORKED_MEMORY_HOG,
    LIMITS,
    MEMFD_HOG,
    assert_serves,
    card,
    daemon_code,
    host_exists,
    host_read,
    html,
    limits,
    memory_drop,
    processes_named,
    set_name,
    wait_until,
)

Code = ExecutionErrorCode
REPO = Path(__file__).resolve().parents[2]

# Loads the _socket extension straight from its file: past the import guard and sys.meta_path.
SOCKET_BYPASS = """
import importlib.util, math, os
def load_socket():
    folder = os.path.dirname(math.__file__)
    name = next(n for n in os.listdir(folder) if n.startswith('_socket.'))
    spec = importlib.util.spec_from_file_location('_socket', os.path.join(folder, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def try_connect(port):
    sock_mod = load_socket()
    s = sock_mod.socket(sock_mod.AF_INET, sock_mod.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(('127.0.0.1', port))
        return 'connected'
    except OSError as exc:
        return f'failed: {exc}'
    finally:
        s.close()
"""


def json_result(result: SandboxResult) -> Any:
    return json.loads(html(result))


async def test_host_passwd_is_not_visible(bwrap_sandbox: Sandbox) -> None:
    host = host_read("/etc/passwd")
    code = "def render(dataset, filters, params):\n    return open('/etc/passwd').read()\n"
    inside = html(await bwrap_sandbox.run(card(code), LIMITS))
    assert inside != host
    host_users = {line.split(":")[0] for line in host.splitlines() if line}
    inside_users = {line.split(":")[0] for line in inside.splitlines() if line}
    assert inside_users <= {"root", "nobody"}
    assert host_users - {"root", "nobody"}, "the host should have other accounts to hide"


async def test_host_files_are_not_visible(bwrap_sandbox: Sandbox) -> None:
    targets = [
        str(REPO / "pyproject.toml"),
        str(REPO / "src" / "tilegraph" / "executor" / "sandbox.py"),
        "/work",
        "/root/.bashrc",
        "/root/.pyenv",
        "/home",
        "/etc/shadow",
        "/etc/hostname",
        "/run/redis",
    ]
    assert host_exists(targets[0]) and host_exists("/root/.bashrc")  # they exist on the host
    code = (
        "import os, json\n"
        "def render(dataset, filters, params):\n"
        "    seen = {}\n"
        "    for path in params['paths']:\n"
        "        try:\n"
        "            with open(path, 'rb') as handle:\n"
        "                seen[path] = 'read %d bytes' % len(handle.read())\n"
        "        except OSError as exc:\n"
        "            seen[path] = type(exc).__name__\n"
        "    return json.dumps({'seen': seen, 'root': sorted(os.listdir('/')),\n"
        "                       'opt': sorted(os.listdir('/opt'))})\n"
    )
    data = json_result(await bwrap_sandbox.run(card(code, params={"paths": targets}), LIMITS))
    for path in targets:
        assert data["seen"][path] in ("FileNotFoundError", "IsADirectoryError"), path
        assert data["seen"][path] != "IsADirectoryError" or not path.startswith(("/work", "/home"))
    assert set(data["root"]) <= {
        "bin",
        "dev",
        "etc",
        "lib",
        "lib64",
        "opt",
        "proc",
        "sbin",
        "tmp",
        "usr",
    }
    assert data["opt"] == ["python", "site-packages", "tilegraph"]


@pytest.mark.parametrize("mode", ["bwrap", "process"])
async def test_secrets_are_not_in_the_environment(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_key = "aws-" + secrets.token_hex(8)
    jwt_secret = "jwt-" + secrets.token_hex(8)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("TILEGRAPH_JWT_SECRET", jwt_secret)
    code = (
        "import os, json\n"
        "def render(dataset, filters, params):\n"
        "    found = dict(os.environ)\n"
        "    for pid in os.listdir('/proc'):\n"
        "        try:\n"
        "            found[pid] = open(f'/proc/{pid}/environ', 'rb').read().decode('latin-1')\n"
        "        except (OSError, ValueError):\n"
        "            pass\n"
        "    return json.dumps(found)\n"
    )
    sandbox = Sandbox(mode=mode, slots=1, prefork=1)  # type: ignore[arg-type]
    try:
        await sandbox.start()
        inside = html(await sandbox.run(card(code), LIMITS))
    finally:
        await sandbox.close()
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == secret_key  # the worker really had them
    assert secret_key not in inside and jwt_secret not in inside
    env = json.loads(inside)
    assert not any(key.startswith(("AWS_", "TILEGRAPH_")) for key in env)


@pytest.fixture
async def listening_port() -> Any:
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, connections
    server.close()
    await server.wait_closed()


async def test_network_is_unreachable(sandbox: Sandbox, listening_port: Any) -> None:
    port, connections = listening_port
    # Control: the very same bypass code connects fine from the worker's own namespace.
    namespace: dict[str, Any] = {}
    exec(SOCKET_BYPASS, namespace)
    assert await asyncio.to_thread(namespace["try_connect"], port) == "connected"
    await wait_until(lambda: len(connections) == 1)

    code = SOCKET_BYPASS + (
        "def render(dataset, filters, params):\n"
        "    return str([try_connect(6379), try_connect(params['port'])])\n"
    )
    outcome = html(await sandbox.run(card(code, params={"port": port}), LIMITS))
    assert "connected" not in outcome and outcome.count("failed") == 2
    assert connections == [1]
    assert math.isfinite(port)


async def test_ctypes_and_subprocess_cannot_escape(bwrap_sandbox: Sandbox) -> None:
    for module in ("ctypes", "subprocess"):
        result = await bwrap_sandbox.run(card(f"import {module}\n"), LIMITS)
        assert result.error is not None and result.error.code == Code.FORBIDDEN_OPERATION
    code = (
        "import os, json, numpy\n"
        "def render(dataset, filters, params):\n"
        "    c = numpy._core._internal.ctypes  # the guard bypassed: ctypes is in reach anyway\n"
        "    libc = c.CDLL(None, use_errno=True)\n"
        "    out = {'uid': os.getuid(), 'ppid': os.getppid()}\n"
        "    out['setuid0'] = libc.setuid(0)\n"
        "    out['unshare_user'] = libc.unshare(0x10000000)\n"
        "    out['mount'] = libc.mount(b'none', b'/usr', b'tmpfs', 0, None)\n"
        "    out['ptrace_init'] = libc.ptrace(16, 1, 0, 0)\n"
        "    out['shell'] = os.system('cat /etc/shadow /root/.bashrc > /dev/null 2>&1')\n"
        "    out['spawn'] = os.waitpid(os.posix_spawn('/bin/sh', ['sh', '-c', 'id -u > /tmp/id'], {}), 0)[1]\n"
        "    out['shell_uid'] = open('/tmp/id').read().strip()\n"
        "    with open('/tmp/tool.sh', 'w') as script:\n"
        "        script.write('#!/bin/sh\\necho ran\\n')\n"
        "    os.chmod('/tmp/tool.sh', 0o755)\n"
        "    out['exec_tmp'] = os.system('/tmp/tool.sh > /dev/null 2>&1')\n"
        "    try:\n"
        "        os.setuid(0)\n"
        "        out['os_setuid'] = 'worked'\n"
        "    except OSError as exc:\n"
        "        out['os_setuid'] = type(exc).__name__\n"
        "    return json.dumps(out)\n"
    )
    data = json_result(await bwrap_sandbox.run(card(code), LIMITS))
    assert data["uid"] >= 64000 and data["shell_uid"] == str(data["uid"])
    assert data["ppid"] == 0  # the zygote is outside the job's PID namespace
    assert data["setuid0"] == data["unshare_user"] == data["mount"] == data["ptrace_init"] == -1
    assert data["shell"] != 0 and data["spawn"] == 0
    assert data["exec_tmp"] != 0  # /tmp is noexec
    assert data["os_setuid"] == "PermissionError"
    await assert_serves(bwrap_sandbox)


async def test_cannot_write_outside_tmp(sandbox: Sandbox) -> None:
    targets = [
        "/etc/passwd",
        "/usr/lib/evil.so",
        "/opt/python/lib/evil.py",
        "/opt/tilegraph/tgexec/runner.py",
        "/evil",
        "/proc/sys/kernel/hostname",
        "/dev/evil",
    ]
    code = (
        "import json\n"
        "def render(dataset, filters, params):\n"
        "    out = {}\n"
        "    for path in params['paths'] + ['/tmp/fine']:\n"
        "        try:\n"
        "            with open(path, 'a') as handle:\n"
        "                handle.write('x')\n"
        "            out[path] = 'written'\n"
        "        except OSError as exc:\n"
        "            out[path] = type(exc).__name__\n"
        "    return json.dumps(out)\n"
    )
    data = json_result(await sandbox.run(card(code, params={"paths": targets}), LIMITS))
    assert data.pop("/tmp/fine") == "written"
    assert all(outcome != "written" for outcome in data.values()), data


async def test_fork_bomb_is_contained(sandbox: Sandbox) -> None:
    bombs = [
        "import os\ndef render(dataset, filters, params):\n    while True:\n        os.fork()\n",
        "import os\ndef render(dataset, filters, params):\n"
        "    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
    ]
    for bomb in bombs:
        result = await sandbox.run(card(bomb), limits(wall_seconds=2.0))
        assert result.error is not None
        assert result.error.code in (Code.RUNTIME_ERROR, Code.TIMEOUT), result.error
        assert result.duration_ms < 8000
        assert _slot_processes(sandbox) == []
    await assert_serves(sandbox)


def _host_has_writable_cgroups() -> bool:
    v1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
    return os.geteuid() == 0 and v1 and os.access("/sys/fs/cgroup/memory", os.W_OK)


async def test_forked_children_share_one_memory_limit(bwrap_sandbox: Sandbox) -> None:
    """RLIMIT_AS alone let seven children of one card hold 7 GiB: the slot's cgroup holds
    them all to the card's limit, and the whole job ends MEMORY_LIMIT."""
    if _host_has_writable_cgroups():
        assert bwrap_sandbox.memory_cap in ("cgroup1", "cgroup2")
    with memory_drop() as drop:
        result = await bwrap_sandbox.run(card(FORKED_MEMORY_HOG), LIMITS)
    assert result.error is not None and result.error.code == Code.MEMORY_LIMIT, result.error
    assert drop[0] <= LIMITS.memory_bytes + 512 * 2**20, f"the host lost {drop[0] / 2**30:.2f} GiB"
    assert _slot_processes(bwrap_sandbox) == []
    await assert_serves(bwrap_sandbox)


async def test_a_transform_forking_memory_hogs_is_held_to_its_limit(
    bwrap_sandbox: Sandbox,
) -> None:
    code = FORKED_MEMORY_HOG.replace(
        "def render(dataset, filters, params):", "def transform(inputs, params):"
    )
    with memory_drop() as drop:
        result = await bwrap_sandbox.run(TransformJob(code, {"children": 7}, []), LIMITS)
    assert result.error is not None and result.error.code == Code.MEMORY_LIMIT, result.error
    assert drop[0] <= LIMITS.memory_bytes + 512 * 2**20, f"the host lost {drop[0] / 2**30:.2f} GiB"


CARD_FILES = limits(max_open_files=256, max_file_bytes=64 * 2**20)  # as a real card has


async def test_memfd_pages_count_against_the_limit(bwrap_sandbox: Sandbox) -> None:
    with memory_drop() as drop:
        result = await bwrap_sandbox.run(card(MEMFD_HOG), CARD_FILES)
    assert result.error is not None and result.error.code == Code.MEMORY_LIMIT, result.error
    assert drop[0] <= LIMITS.memory_bytes + 512 * 2**20, f"the host lost {drop[0] / 2**30:.2f} GiB"
    await assert_serves(bwrap_sandbox)


@pytest.mark.parametrize("hog", [FORKED_MEMORY_HOG, MEMFD_HOG], ids=["forks", "memfds"])
async def test_the_watchdog_caps_a_job_where_no_cgroup_is_writable(hog: str) -> None:
    """The fallback samples every 100 ms, so a fast allocator may overshoot between samples;
    it must still stop the job well before it takes what it asked for (7 and 6 GB)."""
    sandbox = Sandbox(mode="process", slots=1, prefork=1, memory_cap="watchdog")
    await sandbox.start()
    try:
        assert sandbox.memory_cap == "watchdog"
        with memory_drop() as drop:
            result = await sandbox.run(card(hog), CARD_FILES)
        assert result.error is not None and result.error.code == Code.MEMORY_LIMIT, result.error
        assert drop[0] <= LIMITS.memory_bytes + 2**30, f"the host lost {drop[0] / 2**30:.2f} GiB"
        await assert_serves(sandbox)
    finally:
        await sandbox.close()


def _slot_processes(sandbox: Sandbox) -> list[str]:
    """Live host processes (zombies awaiting the zygote's wait() aside) with one of this
    sandbox's slot uids (other sandboxes on the host have blocks of their own)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            uid = int(fields["Uid"].split()[0])
            low = sandbox.uid_base
            if low <= uid < low + sandbox.slots and not fields["State"].strip().startswith("Z"):
                found.append(f"{entry} {fields['Name'].strip()} {fields['State'].strip()}")
    return found


async def test_printing_100_mb_does_not_flood(sandbox: Sandbox) -> None:
    code = (
        "import os, sys\n"
        "def render(dataset, filters, params):\n"
        "    print('x' * 100_000_000)\n"
        "    sys.stderr.write('y' * 10_000_000)\n"
        "    os.write(1, b'z' * 1_000_000)\n"
        "    return 'done'\n"
    )
    result = await sandbox.run(card(code), LIMITS)
    assert html(result) == "done"
    assert result.duration_ms < 5000


async def test_background_process_is_gone_after_the_run(sandbox: Sandbox) -> None:
    marker = f"tg-daemon-{sandbox.mode[:4]}"
    result = await sandbox.run(card(daemon_code(marker, "return 'left one behind'")), LIMITS)
    assert html(result) == "left one behind"
    assert processes_named(marker) == []


async def test_background_process_is_gone_after_a_timeout(sandbox: Sandbox) -> None:
    marker = f"tg-sleeper-{sandbox.mode[:4]}"
    code = daemon_code(marker, "time.sleep(60)")
    run = asyncio.create_task(sandbox.run(card(code), limits(wall_seconds=2.0)))
    await wait_until(lambda: bool(processes_named(marker)))  # it really was running
    result = await run
    assert result.error is not None and result.error.code == Code.TIMEOUT
    assert processes_named(marker) == []
    await assert_serves(sandbox)


async def test_background_process_is_gone_without_namespaces() -> None:
    """The fallback (process group + subreaper sweep) where PID namespaces are unavailable."""
    sandbox = Sandbox(mode="process", slots=1, prefork=1, job_namespaces=False)
    try:
        await sandbox.start()
        assert sandbox.features["job_namespaces"] is False
        marker = "tg-daemon-nons"
        result = await sandbox.run(card(daemon_code(marker, "return 'bye'")), LIMITS)
        assert html(result) == "bye"
        assert processes_named(marker) == []
        await assert_serves(sandbox)
    finally:
        await sandbox.close()


async def test_cannot_read_another_jobs_temp_files(sandbox: Sandbox) -> None:
    nonce = secrets.token_hex(8)
    marker = f"tg-victim-{sandbox.mode[:4]}"
    victim_code = (
        "import time, numpy\n"
        "def render(dataset, filters, params):\n"
        f"    open('/tmp/secret-{nonce}.txt', 'w').write('{nonce}')\n"
        f"    {set_name(marker)}\n"
        "    time.sleep(60)\n"
    )
    cancel = asyncio.Event()
    victim = asyncio.create_task(sandbox.run(card(victim_code), LIMITS, cancel=cancel))
    try:
        await wait_until(lambda: bool(processes_named(marker)))
        victim_pid = processes_named(marker)[0]
        # Control: the file really exists, seen from the host through the victim's own root.
        assert host_read(f"/proc/{victim_pid}/root/tmp/secret-{nonce}.txt") == nonce
        thief_code = (
            "import os, json, glob\n"
            "def render(dataset, filters, params):\n"
            "    found = []\n"
            "    places = ['/tmp', '/dev/shm', '/var/tmp', '/proc/%d/root/tmp' % params['pid']]\n"
            "    places += glob.glob('/proc/*/root/tmp') + glob.glob('/proc/*/cwd')\n"
            "    for place in places:\n"
            "        for folder, _, files in os.walk(place):\n"
            "            for name in files:\n"
            "                try:\n"
            "                    found.append(open(os.path.join(folder, name)).read(100))\n"
            "                except (OSError, UnicodeDecodeError):\n"
            "                    found.append(name)\n"
            "    return json.dumps([text for text in found if params['nonce'] in text])\n"
        )
        # Everything readable is searched for the secret; only matches come back, so a busy
        # /tmp (a checkout there) cannot overflow the output.
        thief = await sandbox.run(
            card(thief_code, params={"pid": victim_pid, "nonce": nonce}), LIMITS
        )
        assert html(thief) == "[]"
    finally:
        cancel.set()
        victim_result = await victim
    assert victim_result.error is not None and victim_result.error.code == Code.CANCELLED


async def test_tampering_with_the_zygote_changes_nothing(sandbox: Sandbox) -> None:
    zygote_before = sandbox.zygote_pid
    code = (
        "import os, json, signal, numpy\n"
        "def render(dataset, filters, params):\n"
        "    c = numpy._core._internal.ctypes\n"
        "    libc = c.CDLL(None, use_errno=True)\n"
        "    fds = []\n"
        "    for fd in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            fds.append(os.readlink(f'/proc/self/fd/{fd}'))\n"
        "        except OSError:\n"
        "            pass  # the directory listing's own fd, closed by now\n"
        "    out = {'killed': [], 'traced': [], 'wrote': [], 'fds': fds}\n"
        "    for pid in range(2, 400):\n"
        "        for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "            try:\n"
        "                os.kill(pid, sig)\n"
        "                out['killed'].append(pid)\n"
        "            except OSError:\n"
        "                pass\n"
        "        if libc.ptrace(16, pid, 0, 0) == 0:\n"
        "            out['traced'].append(pid)\n"
        "    try:\n"
        "        os.kill(-1, signal.SIGKILL)  # everything this uid may signal\n"
        "        out['kill_all'] = 'sent'\n"
        "    except ProcessLookupError:\n"
        "        out['kill_all'] = 'nobody to signal'\n"
        "    for path in ['/opt/tilegraph/tgexec/zygote_main.py', '/opt/tilegraph/tgexec/child.py']:\n"
        "        try:\n"
        "            open(path, 'a').write('import os; os.system(\"evil\")')\n"
        "            out['wrote'].append(path)\n"
        "        except OSError:\n"
        "            pass\n"
        "    out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    return json.dumps(out)\n"
    )
    data = json_result(await sandbox.run(card(code), LIMITS))
    assert data["killed"] == [] and data["traced"] == [] and data["wrote"] == []
    assert data["pids"] == [1]  # its own PID namespace: nothing else to see
    assert data["kill_all"] == "nobody to signal"
    # Only stdio, its own output memfd and its own socket to the worker.
    sockets = [target for target in data["fds"] if target.startswith("socket:")]
    others = [t for t in data["fds"] if not t.startswith("socket:")]
    assert len(sockets) == 1
    assert set(others) <= {"/dev/null", "/memfd:tilegraph-output (deleted)"}
    await assert_serves(sandbox)
    assert sandbox.zygote_pid == zygote_before  # not even restarted


async def test_garbage_on_the_result_channel_is_a_bad_result(bwrap_sandbox: Sandbox) -> None:
    code = (
        "import os\n"
        "def render(dataset, filters, params):\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.write(fd, b'\\xff' * 64)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return 'fine'\n"
    )
    result = await bwrap_sandbox.run(card(code), LIMITS)
    assert result.error is not None and result.error.code == Code.BAD_RESULT
    await assert_serves(bwrap_sandbox)


async def test_threads_work_under_seccomp(bwrap_sandbox: Sandbox) -> None:
    """clone3 answers ENOSYS, so glibc falls back to clone and threads still start."""
    code = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def render(dataset, filters, params):\n"
        "    with ThreadPoolExecutor(4) as pool:\n"
        "        return str(sum(pool.map(lambda n: n * n, range(10))))\n"
    )
    assert html(await bwrap_sandbox.run(card(code), LIMITS)) == "285"


def test_bypass_snippet_is_valid_python() -> None:
    assert importlib.util.find_spec("_socket") is not None
    compile(SOCKET_BYPASS, "<bypass>", "exec")


FORGE = """
import json, os, struct
fds = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        fds[int(fd)] = os.readlink(f'/proc/self/fd/{fd}')
    except OSError:
        pass
sock = next(fd for fd, target in fds.items() if target.startswith('socket:'))
out = next(fd for fd, target in fds.items() if 'tilegraph-output' in target)
os.pwrite(out, b'\\xff' * 4096, 0)
payload = json.dumps(REPLY).encode()
os.write(sock, struct.pack('!IH', len(payload), 0) + payload)
os._exit(0)
"""


@pytest.mark.parametrize(
    ("kind", "reply"),
    [
        ("transform", {"ok": True, "kind": "transform", "length": 4096}),
        ("card", {"ok": True, "kind": "card", "length": 10**9}),
        ("card", {"ok": True, "kind": "transform", "length": 10}),
    ],
)
async def test_forged_replies_are_not_trusted(
    bwrap_sandbox: Sandbox, kind: str, reply: dict[str, Any]
) -> None:
    code = f"REPLY = {reply!r}\n" + FORGE
    job = card(code) if kind == "card" else TransformJob(code, None, [])
    result = await bwrap_sandbox.run(job, LIMITS)
    assert result.error is not None and result.error.code == Code.BAD_RESULT, result
    await assert_serves(bwrap_sandbox)
