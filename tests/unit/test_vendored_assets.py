"""The front-end files the API serves from its own package are the ones recorded when they
were fetched from the npm registry (scripts/vendor-graphiql): same bytes, same version."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import tilegraph.http.ide as ide

FOLDER = Path(ide.__file__).with_name("graphiql")
OURS = {"page.js", "page.css", "LICENSES.txt", "VENDORED.json"}


def test_every_vendored_file_matches_its_recorded_version_and_hash() -> None:
    record = json.loads((FOLDER / "VENDORED.json").read_text())
    for entry in record:
        data = (FOLDER / entry["file"]).read_bytes()
        digest = base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert (len(data), f"sha384-{digest}") == (entry["bytes"], entry["integrity"]), entry
        assert f"{entry['package']}@{entry['version']}" in (FOLDER / "LICENSES.txt").read_text()
    recorded = {entry["file"] for entry in record}
    on_disk = {p.name for p in FOLDER.iterdir() if p.is_file()}
    assert on_disk - OURS == recorded  # nothing served that was not fetched and recorded
