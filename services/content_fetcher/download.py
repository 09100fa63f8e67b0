"""Downloads one report file (§6.2) to a private temporary file, with a size limit and
its SHA-256; the zip stays encrypted on disk and is deleted after use."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.common.mkk.outcome import MkkTransportError


class TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str


async def save_stream(response: httpx.Response, directory: Path | None, limit: int) -> Downloaded:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, tiny
    fd, name = tempfile.mkstemp(prefix="mkk-", suffix=".zip", dir=directory)
    path = Path(name)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                async for chunk in response.aiter_bytes(256 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"file exceeds the {limit} byte limit")
                    digest.update(chunk)
                    f.write(chunk)
            except httpx.HTTPError as exc:
                raise MkkTransportError(f"download cut: {type(exc).__name__}") from None
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240 - cleanup on error
        raise
    return Downloaded(path, size, digest.hexdigest())
