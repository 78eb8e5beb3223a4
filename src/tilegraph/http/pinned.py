"""Pages whose scripts and styles are files of ours, each referenced pinned to its content
(Subresource Integrity; the digest in the URL also keeps caches from serving an older copy).
A page template names an asset as {{name}}; it becomes the attributes that load it."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

_PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_.-]+)\}\}")


def reference(folder: Path, url_path: str, name: str) -> str:
    """The attributes that load the asset `name` of `folder`, served under `url_path`."""
    content = (folder / name).read_bytes()
    digest = hashlib.sha384(content).digest()
    attribute = "href" if name.endswith(".css") else "src"
    url = f"{url_path.lstrip('/')}/{name}?v={digest[:6].hex()}"
    return f'{attribute}="{url}" integrity="sha384-{base64.b64encode(digest).decode()}"'


def fill(template: str, folder: Path, url_path: str) -> str:
    """The template with every {{name}} replaced by the attributes that load that asset."""
    return _PLACEHOLDER.sub(lambda match: reference(folder, url_path, match.group(1)), template)
