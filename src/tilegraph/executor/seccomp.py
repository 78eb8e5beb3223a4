"""A small seccomp deny-list for user code (x86_64 only; stdlib only, runs inside the sandbox).

Bubblewrap, the unprivileged uid and the namespaces are the boundary; this filter only removes
kernel attack surface a chart never needs: new namespaces, mounts, ptrace, BPF, keyrings,
io_uring, module loading. ``clone3`` answers ENOSYS (not EPERM) so glibc falls back to ``clone``
for threads, which numpy and pyarrow need.
"""

from __future__ import annotations

import errno
import struct

from . import linux

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000


def _errno(code: int) -> int:
    return 0x00050000 | code


_CLONE = 56
_CLONE3 = 435
_NAMESPACE_FLAGS = (
    linux.CLONE_NEWNS
    | linux.CLONE_NEWCGROUP
    | linux.CLONE_NEWUTS
    | linux.CLONE_NEWIPC
    | linux.CLONE_NEWUSER
    | linux.CLONE_NEWPID
    | linux.CLONE_NEWNET
)

# x86_64 numbers of syscalls user code never needs.
_DENIED = {
    101: "ptrace",
    155: "pivot_root",
    161: "chroot",
    163: "acct",
    165: "mount",
    166: "umount2",
    167: "swapon",
    168: "swapoff",
    169: "reboot",
    170: "sethostname",
    171: "setdomainname",
    172: "iopl",
    173: "ioperm",
    175: "init_module",
    176: "delete_module",
    246: "kexec_load",
    248: "add_key",
    249: "request_key",
    250: "keyctl",
    272: "unshare",
    298: "perf_event_open",
    303: "name_to_handle_at",
    304: "open_by_handle_at",
    308: "setns",
    310: "process_vm_readv",
    311: "process_vm_writev",
    313: "finit_module",
    320: "kexec_file_load",
    321: "bpf",
    323: "userfaultfd",
    425: "io_uring_setup",
    426: "io_uring_enter",
    427: "io_uring_register",
    428: "open_tree",
    429: "move_mount",
    430: "fsopen",
    431: "fsconfig",
    432: "fsmount",
    433: "fspick",
    442: "mount_setattr",
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_program() -> bytes:
    """The classic-BPF program: check the arch, then deny-list, then allow."""
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        _insn(_JGE_K, 0, 1, _X32_SYSCALL_BIT),
        _insn(_RET_K, 0, 0, _errno(errno.ENOSYS)),
        _insn(_JEQ_K, 0, 1, _CLONE3),
        _insn(_RET_K, 0, 0, _errno(errno.ENOSYS)),
    ]
    for nr in sorted(_DENIED):
        prog.append(_insn(_JEQ_K, 0, 1, nr))
        prog.append(_insn(_RET_K, 0, 0, _errno(errno.EPERM)))
    prog += [
        _insn(_JEQ_K, 0, 3, _CLONE),
        _insn(_LD_W_ABS, 0, 0, 16),  # low half of args[0]: the clone flags
        _insn(_JSET_K, 0, 1, _NAMESPACE_FLAGS),
        _insn(_RET_K, 0, 0, _errno(errno.EPERM)),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)


def supported() -> bool:
    return linux.machine() == "x86_64"


def install() -> None:
    """Apply the filter to this process and everything it starts (irreversible)."""
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    linux.install_seccomp(build_program())
