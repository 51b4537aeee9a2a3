"""`governor policy keygen` writes the private key readable by its owner only, from the
moment the file exists (issue 16: it used to write, then restrict)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from app.tools import policy_tool


def test_the_key_file_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_fdopen = os.fdopen

    def watching_fdopen(fd: int, *args: object, **kwargs: object) -> object:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))  # before a byte is written
        return real_fdopen(fd, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(policy_tool.os, "fdopen", watching_fdopen)
    out = tmp_path / "keys" / "policy.key"
    out.parent.mkdir()
    out.write_text("old\n")
    out.chmod(0o644)
    public = policy_tool.keygen(out)
    assert modes == [0o600]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert len(base64.b64decode(out.read_text())) == 32 and len(base64.b64decode(public)) == 32
