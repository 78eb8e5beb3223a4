"""The cgroup v2 group, on a directory laid out as the kernel lays out a cgroup (this machine
type mounts v1 only, so the v2 files are written and read here as the kernel would)."""

from __future__ import annotations

from pathlib import Path

from tilegraph.executor.memory_cap import CgroupV2Group


def _group(tmp_path: Path) -> CgroupV2Group:
    for name, text in {
        "memory.max": "max\n",
        "memory.swap.max": "max\n",
        "memory.oom.group": "0\n",
        "memory.peak": "0\n",
        "pids.max": "max\n",
        "cgroup.procs": "",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n",
    }.items():
        (tmp_path / name).write_text(text)
    return CgroupV2Group(tmp_path)


def test_prepare_sets_the_limits_and_kills_as_a_group(tmp_path: Path) -> None:
    group = _group(tmp_path)
    group.prepare(4 << 30, 64)
    assert (tmp_path / "memory.max").read_text() == str(4 << 30)
    assert (tmp_path / "memory.swap.max").read_text() == "0"
    assert (tmp_path / "memory.oom.group").read_text() == "1"
    assert (tmp_path / "pids.max").read_text() == "64"


def test_only_oom_kills_after_prepare_count_as_a_breach(tmp_path: Path) -> None:
    group = _group(tmp_path)
    group.prepare(1 << 30, 64)
    assert not group.breached()  # the kill counted before this job is the last job's
    events = tmp_path / "memory.events"
    events.write_text(events.read_text().replace("oom_kill 1", "oom_kill 2"))
    assert group.breached()


def test_a_group_held_at_its_limit_counts_as_a_breach(tmp_path: Path) -> None:
    group = _group(tmp_path)
    group.prepare(1 << 30, 64)
    (tmp_path / "memory.current").write_text(str((1 << 30) - 4096))
    assert not group.breached()  # near the limit, but it never hit it in this job
    events = tmp_path / "memory.events"
    events.write_text(events.read_text().replace("max 3", "max 4"))
    assert group.breached()
    (tmp_path / "memory.current").write_text(str(1 << 20))
    assert not group.breached()  # hit it once, then reclaim made room: still running fine
