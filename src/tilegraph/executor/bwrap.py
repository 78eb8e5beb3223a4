"""How the zygote is launched: the staged runtime, the bubblewrap command line, and the plain
command for ``process`` mode.

The sandbox root is an empty read-only tmpfs with only what CPython and the data libraries
need bound into it read-only. The interpreter's prefix is bound at ``/opt/python`` (the host
prefix lives under /root, which an unprivileged uid cannot traverse), the venv's site-packages
at ``/opt/site-packages``, and copies of the sandbox-side modules at ``/opt/tilegraph/tgexec``,
so user code never sees the Tilegraph source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "tgexec"
SANDBOX_MODULES = (
    "protocol.py",
    "linux.py",
    "seccomp.py",
    "runner.py",
    "child.py",
    "plotly_asset.py",
    "zygote_main.py",
)
SANDBOX_PREFIX = "/opt/python"
SANDBOX_SITE = "/opt/site-packages"
SANDBOX_LIB = "/opt/tilegraph"

# Environment inside the sandbox. BLAS/OpenMP pools stay single-threaded so the zygote has no
# helper threads when it forks (and numpy never spins up pools per job).
BASE_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

_PASSWD = (
    "root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
_GROUP = "root:x:0:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class PythonLayout:
    """Where the worker's interpreter and libraries live on the host."""

    executable: str  # the real interpreter binary (not the venv symlink)
    prefix: str  # its installation prefix (sys.base_prefix)
    stdlib: list[str]  # stdlib zip, stdlib, lib-dynload
    site_packages: list[str]

    @classmethod
    def of_current(cls) -> PythonLayout:
        base_exe = getattr(sys, "_base_executable", sys.executable)
        version = f"{sys.version_info.major}{sys.version_info.minor}"
        paths = sysconfig.get_paths()
        stdlib = [
            os.path.join(sys.base_prefix, "lib", f"python{version}.zip"),
            paths["stdlib"],
            _lib_dynload(paths["stdlib"]),
        ]
        site = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
        return cls(os.path.realpath(base_exe), sys.base_prefix, stdlib, site)

    @property
    def relocated(self) -> bool:
        """Whether the prefix must be bound elsewhere (it is not already under /usr)."""
        return not (self.prefix == "/usr" or self.prefix.startswith("/usr/"))

    def inside(self, path: str) -> str:
        """The path a host interpreter/stdlib path has inside the sandbox."""
        if self.relocated and (path == self.prefix or path.startswith(self.prefix + os.sep)):
            return SANDBOX_PREFIX + path[len(self.prefix) :]
        return path


def _lib_dynload(stdlib: str) -> str:
    """Where extension modules such as ``math`` live (a venv's sysconfig points elsewhere)."""
    import math

    origin = getattr(math, "__file__", None)
    return os.path.dirname(origin) if origin else os.path.join(stdlib, "lib-dynload")


def stage_runtime(directory: Path) -> None:
    """Copy the sandbox-side modules and the fake /etc files into a private staging dir."""
    here = Path(__file__).resolve().parent
    package = directory / "lib" / PACKAGE
    package.mkdir(parents=True)
    for name in SANDBOX_MODULES:
        shutil.copyfile(here / name, package / name)
    etc = directory / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(_PASSWD)
    (etc / "group").write_text(_GROUP)
    (directory / "tmp").mkdir()
    (directory / "tmp").chmod(0o1777)  # fallback per-job dirs are made by the job's own uid
    for path in (directory, directory / "lib", package, etc):
        path.chmod(0o755 if path != directory else 0o711)


def _bootstrap(sys_path: list[str]) -> str:
    return (
        "import sys; sys.dont_write_bytecode = True; "
        f"sys.path[:] = {sys_path!r}; "
        f"from {PACKAGE}.zygote_main import main; main(sys.argv[1])"
    )


def _top_level_links() -> list[str]:
    """/bin, /lib64 … are symlinks into /usr on merged-/usr systems; mirror what the host has."""
    args: list[str] = []
    for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(name):
            args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            args += ["--ro-bind", name, name]
    return args


def bwrap_command(
    layout: PythonLayout,
    staging: Path,
    config: dict[str, object],
    *,
    bwrap: str = "bwrap",
    as_root: bool | None = None,
    command: list[str] | None = None,
) -> list[str]:
    """The full bubblewrap command line for the zygote (or ``command``, for probing)."""
    if as_root is None:
        as_root = os.geteuid() == 0
    args = [
        bwrap,
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if not as_root:
        args.append("--unshare-user")  # unprivileged bwrap needs a user namespace
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox", "--clearenv"]
    env = dict(BASE_ENV)
    if layout.relocated:
        env["LD_LIBRARY_PATH"] = f"{SANDBOX_PREFIX}/lib"
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += ["--tmpfs", "/", "--ro-bind", "/usr", "/usr", *_top_level_links(), "--dir", "/etc"]
    args += ["--ro-bind", str(staging / "etc" / "passwd"), "/etc/passwd"]
    args += ["--ro-bind", str(staging / "etc" / "group"), "/etc/group"]
    for name in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(name):
            args += ["--ro-bind", os.path.realpath(name), name]
    # Parents bwrap creates implicitly are 0700, which the job's uid could not traverse.
    args += ["--perms", "0755", "--dir", "/opt"]
    if layout.relocated:
        args += ["--ro-bind", layout.prefix, SANDBOX_PREFIX]
    for index, site in enumerate(layout.site_packages):
        args += ["--ro-bind", site, SANDBOX_SITE + (f"-{index}" if index else "")]
    args += ["--ro-bind", str(staging / "lib"), SANDBOX_LIB]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]
    args += ["--remount-ro", "/"]
    args += ["--chdir", "/tmp"]
    if as_root:
        # Root without a user namespace: keep only what the zygote needs to switch children
        # to per-slot uids, give them their own namespaces and lift their background
        # priority when a job starts; children drop all of it before user code.
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_KILL", "CAP_SYS_NICE"):
            args += ["--cap-add", cap]
    else:
        args += ["--cap-add", "CAP_SYS_ADMIN"]
    if command is not None:
        return args + command
    sys_path = [SANDBOX_LIB]
    sys_path += [layout.inside(p) for p in layout.stdlib]
    sys_path += [SANDBOX_SITE + (f"-{i}" if i else "") for i in range(len(layout.site_packages))]
    python = layout.inside(layout.executable)
    return [*args, python, "-I", "-S", "-B", "-c", _bootstrap(sys_path), json.dumps(config)]


def process_command(layout: PythonLayout, staging: Path, config: dict[str, object]) -> list[str]:
    """``process`` mode: the same zygote, started directly (no bubblewrap)."""
    sys_path = [str(staging / "lib"), *layout.stdlib, *layout.site_packages]
    return [layout.executable, "-I", "-S", "-B", "-c", _bootstrap(sys_path), json.dumps(config)]


def bwrap_available(bwrap: str = "bwrap", timeout: float = 10.0) -> bool:
    """Really start a trivial sandbox with the same namespaces and mounts the zygote uses."""
    path = shutil.which(bwrap)
    if path is None:
        return False
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tilegraph-bwrap-probe-") as tmp:
        staging = Path(tmp)
        try:
            stage_runtime(staging)
            command = bwrap_command(
                PythonLayout.of_current(), staging, {}, bwrap=path, command=["/bin/true"]
            )
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=timeout,
                env={"PATH": "/usr/bin:/bin"},
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
    return done.returncode == 0
