"""The local AWS emulator loses no acknowledged write: kill -9 under a steady write loop,
restart on the same state, and every DynamoDB item and S3 object that was acknowledged is
there; snapshots taken under load never stall requests."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.faults.conftest import Emulator

TABLE = "writes"
BUCKET = "writes"
PART = 5 << 20


def _create(emulator: Emulator) -> None:
    emulator.client("dynamodb").create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    emulator.client("s3").create_bucket(Bucket=BUCKET)


@dataclass
class WriteLoop:
    """Threads that PutItem and PutObject as fast as the emulator answers, recording each
    acknowledged write and each request's latency, until stopped or the emulator dies."""

    emulator: Emulator
    threads: int = 4
    items: dict[str, str] = field(default_factory=dict)
    objects: dict[str, str] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)
    stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    @property
    def acknowledged(self) -> int:
        return len(self.items) + len(self.objects)

    def start(self) -> None:
        for number in range(self.threads):
            worker = threading.Thread(target=self._run, args=(number,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def join(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(30)

    def _run(self, number: int) -> None:
        dynamodb = self.emulator.client("dynamodb", timeout=5)
        s3 = self.emulator.client("s3", timeout=5)
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            key = f"w{number}-{sequence}"
            value = os.urandom(8 + sequence % 64).hex()
            body = os.urandom(256 + (sequence * 977) % 20000)
            try:
                began = time.monotonic()
                dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "value": {"S": value}})
                self.latencies.append((began, time.monotonic() - began))
                self.items[key] = value
                began = time.monotonic()
                s3.put_object(Bucket=BUCKET, Key=f"objects/{key}", Body=body)
                self.latencies.append((began, time.monotonic() - began))
                self.objects[f"objects/{key}"] = hashlib.md5(body).hexdigest()
            except Exception:
                return  # the emulator is gone: whatever was not acknowledged may be lost


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)


def _missing(emulator: Emulator, loop: WriteLoop) -> list[str]:
    dynamodb = emulator.client("dynamodb")
    s3 = emulator.client("s3")
    missing = []
    for key, value in loop.items.items():
        item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}}).get("Item")
        if item is None or item["value"]["S"] != value:
            missing.append(key)
    for key, digest in loop.objects.items():
        try:
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            missing.append(key)
            continue
        if hashlib.md5(body).hexdigest() != digest:
            missing.append(key)
    return missing


def test_kill_9_under_a_write_loop_loses_no_acknowledged_write(emulator: Emulator) -> None:
    emulator.start()
    _create(emulator)
    s3 = emulator.client("s3")
    # A multipart upload completed before the crash, and one still open across it.
    parts = [os.urandom(PART), os.urandom(1000)]
    done = s3.create_multipart_upload(Bucket=BUCKET, Key="multipart/done")["UploadId"]
    etags = [
        s3.upload_part(Bucket=BUCKET, Key="multipart/done", UploadId=done, PartNumber=n, Body=part)[
            "ETag"
        ]
        for n, part in enumerate(parts, 1)
    ]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="multipart/done",
        UploadId=done,
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, 1)]},
    )
    open_id = s3.create_multipart_upload(Bucket=BUCKET, Key="multipart/open")["UploadId"]
    first = s3.upload_part(
        Bucket=BUCKET, Key="multipart/open", UploadId=open_id, PartNumber=1, Body=parts[0]
    )["ETag"]

    loop = WriteLoop(emulator)
    loop.start()
    _wait(lambda: loop.acknowledged >= 200, 60, "the write loop did not get going")
    # A snapshot mid-loop: the restart loads it and replays only the log after it.
    emulator.signal(signal.SIGUSR1)
    emulator.wait_for_log("aws-emulator: snapshot at")
    at_snapshot = loop.acknowledged
    _wait(lambda: loop.acknowledged >= at_snapshot + 300, 60, "the write loop stalled")
    emulator.kill()
    loop.join()
    # A crash mid-append leaves a torn record at the log's end: it must be cut off.
    segments = sorted(emulator.state_file.with_suffix(".wal").glob("*.wal"))
    with segments[-1].open("ab") as handle:
        handle.write(b"TGW1\x00\x01torn")

    recovery = emulator.start()
    missing = _missing(emulator, loop)
    print(
        f"\nacknowledged writes lost after kill -9: {len(missing)} of {loop.acknowledged} "
        f"({len(loop.items)} items, {len(loop.objects)} objects); "
        f"recovery (restart -> serving): {recovery:.2f}s"
    )
    assert missing == []
    assert loop.acknowledged >= 500
    assert recovery < 30

    s3 = emulator.client("s3")
    body = s3.get_object(Bucket=BUCKET, Key="multipart/done")["Body"].read()
    assert body == b"".join(parts)
    second = s3.upload_part(
        Bucket=BUCKET, Key="multipart/open", UploadId=open_id, PartNumber=2, Body=parts[1]
    )["ETag"]
    s3.complete_multipart_upload(
        Bucket=BUCKET,
        Key="multipart/open",
        UploadId=open_id,
        MultipartUpload={
            "Parts": [{"ETag": first, "PartNumber": 1}, {"ETag": second, "PartNumber": 2}]
        },
    )
    assert s3.get_object(Bucket=BUCKET, Key="multipart/open")["Body"].read() == b"".join(parts)

    # A clean stop writes a final snapshot and leaves no log to replay.
    emulator.stop()
    emulator.start()
    last_start = emulator.log_text().rsplit("restored state from", 1)[1]
    assert "replayed" not in last_start.split("listening", 1)[0]
    assert _missing(emulator, loop) == []


def test_a_snapshot_under_a_write_loop_never_stalls_a_request(emulator: Emulator) -> None:
    emulator.start()
    _create(emulator)
    # State for the snapshot to write: 40 MB of objects and 10,000 items (moto's many
    # small objects are what makes pickling slow).
    s3 = emulator.client("s3")
    for number in range(40):
        s3.put_object(Bucket=BUCKET, Key=f"bulk/{number}", Body=os.urandom(1 << 20))
    dynamodb = emulator.client("dynamodb")
    for batch in range(400):
        dynamodb.batch_write_item(
            RequestItems={
                TABLE: [
                    {
                        "PutRequest": {
                            "Item": {
                                "pk": {"S": f"bulk-{batch}-{n}"},
                                "value": {"S": os.urandom(200).hex()},
                                "n": {"N": str(n)},
                            }
                        }
                    }
                    for n in range(25)
                ]
            }
        )

    loop = WriteLoop(emulator, threads=3)
    loop.start()
    _wait(lambda: loop.acknowledged >= 100, 60, "the write loop did not get going")
    began = time.monotonic()
    emulator.signal(signal.SIGUSR1)
    emulator.wait_for_log("aws-emulator: snapshot at")
    ended = time.monotonic()
    at_snapshot = loop.acknowledged
    _wait(lambda: loop.acknowledged >= at_snapshot + 50, 60, "the write loop stalled")
    loop.join()

    during = [
        seconds for start, seconds in loop.latencies if began <= start + seconds and start <= ended
    ]
    before = sorted(seconds for start, seconds in loop.latencies if start + seconds < began)
    paused = emulator.log_text().split("requests paused ", 1)[1].split()[0]
    print(
        f"\nsnapshot took {ended - began:.2f}s; {len(during)} requests during it, longest "
        f"{max(during) * 1000:.0f} ms (median before it {before[len(before) // 2] * 1000:.1f} ms); "
        f"requests paused {paused} ms for the fork"
    )
    assert len(during) >= 5
    assert max(during) < 0.2
    assert emulator.state_file.exists()
