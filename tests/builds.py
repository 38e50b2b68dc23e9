"""Building from a clean tree on every supported Python: the versions, their interpreters here.

For ``.ci/run`` and ``tests/test_packaging.py``:

- ``python -m tests.builds pythons`` prints ``VERSION PATH`` for each version that pyproject's
  ``requires-python`` admits and this machine has, one a line (``--others``: all but the
  running interpreter's version; ``--unsupported``: the versions just outside the range);
- ``python -m tests.builds copy DEST`` copies the tree to ``DEST`` as a fresh clone has it (no
  venv, build folder, compiled modules or caches), symbolic links kept.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
_MINORS = range(6, 30)
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "out", "*.egg-info", "__pycache__", "*.so", "*.c",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")
"""What a fresh clone lacks; a copy without them builds as one would."""


def copy_of_the_tree(dest: Path) -> Path:
    """Copy the checkout to ``dest`` (which must not exist) as a fresh clone has it."""
    shutil.copytree(ROOT, dest, symlinks=True, ignore=NOT_COPIED)
    return dest


def requires_python() -> SpecifierSet:
    """pyproject.toml's ``requires-python``."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return SpecifierSet(tomllib.load(file)["project"]["requires-python"])


def supported() -> list[str]:
    """The ``3.N`` versions that ``requires-python`` admits."""
    spec = requires_python()
    return [f"3.{minor}" for minor in _MINORS if spec.contains(f"3.{minor}.0")]


def unsupported_neighbours() -> list[str]:
    """The versions just below and just above the declared range (3.10 and 3.13, say)."""
    minors = [int(version.split(".")[1]) for version in supported()]
    return [f"3.{minors[0] - 1}", f"3.{minors[-1] + 1}"]


def _release(path: Path) -> tuple[int, ...]:
    # pyenv's versions/3.12.1/bin/python3.12: newest release first; a "-dev" folder sorts last
    try:
        return tuple(int(part) for part in path.parents[1].name.split("."))
    except ValueError:
        return ()


def _candidates(version: str) -> Iterator[Path]:
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        yield Path(sys.executable)
    name = f"python{version}"
    found = shutil.which(name)
    if found:
        yield Path(found)
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    yield from sorted(pyenv.glob(f"{version}.*/bin/{name}"), key=_release, reverse=True)
    yield Path("/usr/bin") / name


def _works(python: Path, version: str) -> bool:
    # A pyenv shim of a version that is not selected exits with an error, and Debian's
    # interpreter lacks ensurepip without python3.N-venv: both are skipped.
    probe = "import sys, ensurepip, venv; print('%d.%d' % sys.version_info[:2])"
    try:
        done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                              timeout=60, check=False)
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def interpreter(version: str) -> Path | None:
    """An interpreter of ``version`` (``3.12``) that can make a venv, or None."""
    return next((p for p in _candidates(version) if p.exists() and _works(p, version)), None)


def interpreters(versions: list[str]) -> dict[str, Path]:
    """Those of ``versions`` found on this machine, each with its interpreter."""
    found = {version: interpreter(version) for version in versions}
    return {version: path for version, path in found.items() if path is not None}


def main(args: list[str]) -> None:
    """``pythons [--others|--unsupported]`` or ``copy DEST`` (see the module's docstring)."""
    if args[:1] == ["copy"] and len(args) == 2:
        copy_of_the_tree(Path(args[1]))
        return
    if args[:1] != ["pythons"]:
        raise SystemExit("usage: python -m tests.builds pythons [--others|--unsupported]"
                         " | copy DEST")
    versions = unsupported_neighbours() if "--unsupported" in args else supported()
    if "--others" in args:
        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        versions = [v for v in versions if v != running]
    for version, path in interpreters(versions).items():
        print(version, path)


if __name__ == "__main__":
    main(sys.argv[1:])
