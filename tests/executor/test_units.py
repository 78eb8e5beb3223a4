"""In-process checks of the pieces that need no sandbox: framing with fds, result
validation, error descriptions, limits, the bwrap command line and the seccomp program."""

from __future__ import annotations

import os
import socket
import struct
import threading

import pandas as pd
import pyarrow as pa
import pytest

from tilegraph.executor import SandboxLimits, bwrap, protocol, runner, seccomp
from tilegraph.executor.limits import CARD_LIMITS


def test_frames_carry_fds_in_order_across_split_reads() -> None:
    left, right = socket.socketpair()
    try:
        fds = [os.memfd_create(f"m{i}") for i in range(3)]
        for i, fd in enumerate(fds):
            os.write(fd, f"payload-{i}".encode())

        def send() -> None:  # a frame bigger than the socket buffer, so reads come in pieces
            protocol.send_blocking(left, {"n": 1, "big": "x" * 300_000}, fds[:2])
            protocol.send_blocking(left, {"n": 2}, [])
            protocol.send_blocking(left, {"n": 3}, fds[2:])

        sender = threading.Thread(target=send)
        sender.start()
        decoder = protocol.FrameDecoder(1 << 20)
        got = [protocol.recv_blocking(right, decoder) for _ in range(3)]
        sender.join()
        protocol.close_fds(fds)
        assert [m["n"] for m, _ in got] == [1, 2, 3]
        assert [len(f) for _, f in got] == [2, 0, 1]
        assert os.pread(got[0][1][1], 9, 0) == b"payload-1"
        assert os.pread(got[2][1][0], 9, 0) == b"payload-2"
        for _, received in got:
            protocol.close_fds(received)
    finally:
        left.close()
        right.close()


def test_decoder_rejects_oversized_and_malformed_frames() -> None:
    decoder = protocol.FrameDecoder(100)
    decoder.feed(struct.pack("!IH", 1000, 0), [])
    with pytest.raises(protocol.ProtocolError):
        decoder.next()
    decoder = protocol.FrameDecoder(100)
    decoder.feed(struct.pack("!IH", 2, 0) + b"[]", [])
    with pytest.raises(protocol.ProtocolError):
        decoder.next()
    decoder = protocol.FrameDecoder(100)
    decoder.feed(struct.pack("!IH", 2, 1) + b"{}", [])
    with pytest.raises(protocol.ProtocolError):  # announces an fd that never came
        decoder.next()


def test_card_result_accepts_strings_and_html_results() -> None:
    assert runner.card_result("<p>").html == "<p>"
    result = runner.card_result(runner.HTMLResult("<b>", ["a"], ["b"]))
    assert (result.used_columns, result.filter_applicable) == (["a"], ["b"])
    for bad in (None, 42, b"<p>", runner.HTMLResult(123)):  # type: ignore[arg-type]
        with pytest.raises(runner.JobError) as caught:
            runner.card_result(bad)
        assert caught.value.code == runner.BAD_RESULT


def test_table_from_frame_drops_the_index_and_names_bad_columns() -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    assert runner.table_from_frame(frame).column_names == ["a"]
    with pytest.raises(runner.JobError, match="Column 'b'"):
        runner.table_from_frame(pd.DataFrame({"a": [1], "b": [{"k": 1}]}))
    with pytest.raises(runner.JobError, match="Column 'd'"):
        runner.table_from_frame(pd.DataFrame({"d": pd.to_timedelta([1], unit="s")}))
    empty = runner.table_from_frame(pd.DataFrame({"n": [None, None]}))
    assert pa.types.is_string(empty.schema.field("n").type)


def test_describe_exception_keeps_only_user_frames() -> None:
    code = runner.compile_user_code("def f():\n    return {}['k']\n", runner.CARD_FILENAME)
    scope: dict[str, object] = {}
    exec(code, scope)
    try:
        scope["f"]()  # type: ignore[operator]
    except KeyError as exc:
        error = runner.describe_exception(exc, runner.CARD_FILENAME, {})
    assert error.code == runner.RUNTIME_ERROR and error.line == 2
    assert error.message.splitlines()[0] == "KeyError: 'k'"
    assert "test_units.py" not in error.message


def test_syntax_error_line_and_nul_bytes() -> None:
    with pytest.raises(runner.JobError) as caught:
        runner.compile_user_code("x = 1\n  y = 2\n", runner.CARD_FILENAME)
    assert caught.value.code == runner.SYNTAX_ERROR and caught.value.line == 2
    with pytest.raises(runner.JobError) as caught:
        runner.compile_user_code("x = '\0'", runner.CARD_FILENAME)
    assert caught.value.code == runner.SYNTAX_ERROR


def test_limits_are_validated() -> None:
    assert CARD_LIMITS.max_output_bytes == 5 * 1024 * 1024 and CARD_LIMITS.wall_seconds == 10
    with pytest.raises(ValueError):
        SandboxLimits(0, 1, 1, 8, 1, 64, 1)
    with pytest.raises(ValueError):
        SandboxLimits(1, 1, 1, 1, 1, 64, 1)


def test_bwrap_command_isolates_and_relocates(tmp_path: object) -> None:
    layout = bwrap.PythonLayout(
        executable="/root/.pyenv/versions/3.11.7/bin/python3.11",
        prefix="/root/.pyenv/versions/3.11.7",
        stdlib=["/root/.pyenv/versions/3.11.7/lib/python3.11"],
        site_packages=["/work/main/.venv/lib/python3.11/site-packages"],
    )
    from pathlib import Path

    command = bwrap.bwrap_command(layout, Path("/staging"), {"control_fd": 5}, as_root=True)
    joined = " ".join(command)
    for flag in (
        "--unshare-net",
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in command
    assert "--ro-bind / /" not in joined and "--bind / /" not in joined
    assert "--ro-bind /root/.pyenv/versions/3.11.7 /opt/python" in joined
    assert "/opt/python/bin/python3.11" in command
    assert "--ro-bind /staging/etc/passwd /etc/passwd" in joined
    assert "--proc /proc" in joined and "--tmpfs /tmp" in joined
    assert "/work" not in joined.replace(
        "--ro-bind /work/main/.venv/lib/python3.11/site-packages /opt/site-packages", ""
    )
    unprivileged = bwrap.bwrap_command(layout, Path("/staging"), {}, as_root=False)
    assert "--unshare-user" in unprivileged


def test_seccomp_program_shape() -> None:
    program = seccomp.build_program()
    assert len(program) % 8 == 0 and len(program) // 8 < 200
    instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    assert instructions[-1] == (0x06, 0, 0, 0x7FFF0000)  # default: allow
    enosys = 0x00050000 | 38
    assert (0x15, 0, 1, 435) in instructions  # clone3 ...
    assert instructions[instructions.index((0x15, 0, 1, 435)) + 1] == (0x06, 0, 0, enosys)
