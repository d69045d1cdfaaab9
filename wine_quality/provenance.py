"""Where a model or a bento comes from: the code's git commit and the versions of the libraries involved."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

from wine_quality.settings import PROJECT_ROOT


def git_commit() -> str | None:
    """The checkout's full commit, with '-dirty' when tracked files changed; None outside a git checkout."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        return git("rev-parse", "HEAD") + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions(*names: str) -> dict[str, str]:
    """Python's version and the installed version of each named distribution."""
    return {"python": platform.python_version(), **{name: metadata.version(name) for name in names}}
