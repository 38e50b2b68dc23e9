"""The package: its metadata, where the rules are found, and the wheel as a user installs it.

The tests marked ``slow`` build the wheel (``pip wheel``, with the compiled modules) from a copy
of the tree on every supported Python this machine has, install it into a fresh venv with its
dependencies, and run ``pointengine`` from an empty folder. They are left out of a plain
``pytest`` run: ``pytest -m slow tests/test_packaging.py`` runs them (``.ci/run`` does).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointengine.catalog.loading import load_catalog
from pointengine.catalog.shipped import SHIPPED_RULES, rules_folder
from pointengine.cli.main import app
from tests import builds
from tests.world import ROOT, RULES

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
COMPILED = re.findall(r'"(pointengine\.[\w.]+)"', (ROOT / "setup.py").read_text(encoding="utf-8"))


# --- metadata -------------------------------------------------------------------------------


def test_the_license_file_is_the_declared_license() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="ascii")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text
    assert "[LICENSE](LICENSE)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_classifiers_name_the_supported_versions_only() -> None:
    declared = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    assert declared == set(builds.supported())
    assert builds.supported() == ["3.11", "3.12"]


def test_the_readme_says_what_blocks_the_next_version() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    beyond = builds.unsupported_neighbours()[1]
    assert f"Python {beyond}" in readme
    assert "PyEval_CallObject" in readme


def test_adapters_and_rules_are_reached_through_the_package() -> None:
    # One copy in git: pointengine/adapters and pointengine/rules are links to the top-level
    # folders, which is how the wheel comes to hold them under pointengine.
    for name in ("adapters", "rules"):
        link = ROOT / "pointengine" / name
        assert link.is_symlink(), link
        assert os.readlink(link) == f"../{name}"
    assert RULES.resolve() == SHIPPED_RULES


# --- the default rules folder ---------------------------------------------------------------


def test_a_named_rules_folder_always_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    assert rules_folder(Path("elsewhere")) == Path("elsewhere")
    assert rules_folder(Path("rules")) == Path("rules")


def test_the_working_directory_rules_come_before_the_shipped_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert rules_folder() == SHIPPED_RULES
    (tmp_path / "rules" / "schema").mkdir(parents=True)  # what `pointengine schema` leaves
    assert rules_folder() == SHIPPED_RULES
    (tmp_path / "rules" / "providers.yaml").write_text("providers: {}\n")
    assert rules_folder() == Path("rules")


def test_validate_from_a_folder_without_rules_uses_the_shipped_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    programs = len(load_catalog(RULES).programs)
    assert f"{programs} programs and" in result.output


def test_commands_say_which_rules_they_default_to() -> None:
    result = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "200"})
    assert "the shipped rules" in result.output


# --- the wheel, installed (slow) ------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """A wheel built on one Python and installed, with its dependencies, into a fresh venv."""

    version: str
    wheel: Path
    venv: Path

    @property
    def bin(self) -> Path:
        """The venv's scripts folder."""
        return self.venv / "bin"

    def site_packages(self) -> Path:
        """The venv's site-packages folder."""
        return self.venv / "lib" / f"python{self.version}" / "site-packages"


def _env() -> dict[str, str]:
    # Nothing of this checkout or its venv may leak into the installed package's runs.
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "REDIS_SERVER")
    return {k: v for k, v in os.environ.items()
            if k not in drop and not k.startswith("POINTENGINE_")}


def _run(command: list[str | Path], cwd: Path, timeout: float = 1_200
         ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


SUPPORTED = builds.interpreters(builds.supported())


@pytest.fixture(scope="module", params=sorted(SUPPORTED))
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Installed]:
    version: str = request.param
    work = tmp_path_factory.mktemp(f"wheel-{version}")
    source = builds.copy_of_the_tree(work / "src")
    venv = work / "venv"
    _run([SUPPORTED[version], "-m", "venv", venv], work)
    _run([venv / "bin" / "python", "-m", "pip", "wheel", source, "--no-deps", "-w",
          work / "dist"], work)
    (wheel,) = (work / "dist").glob("pointengine-*.whl")
    _run([venv / "bin" / "python", "-m", "pip", "install", wheel], work)
    yield Installed(version, wheel, venv)


@pytest.mark.slow
def test_the_wheel_holds_pointengine_only(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "pointengine", "pointengine-0.1.0.dist-info"}
    have = set(names)
    rules = {f"pointengine/rules/{p.relative_to(RULES).as_posix()}" for p in RULES.rglob("*.yaml")}
    adapters = {f"pointengine/adapters/{p.name}" for p in (ROOT / "adapters").glob("*.py")}
    assert rules <= have and len(rules) > 20
    assert adapters <= have
    for module in COMPILED:
        stem = module.replace(".", "/")
        assert any(n.startswith(stem + ".") and n.endswith(".so") for n in names), module
        for interface in (f"{stem}.pxd", f"{stem}.pyi"):  # for cimport and for mypy
            if (ROOT / interface).exists():
                assert interface in have, interface
    assert {"pointengine/py.typed", "pointengine/data/municipalities.csv",
            "pointengine/synth/data/municipalities.csv", "pointengine/synth/data/prefectures.csv",
            "pointengine-0.1.0.dist-info/licenses/LICENSE"} <= have
    assert not [n for n in names if n.endswith(".c")]
    # the console is served whole from the package (no CDN on a closed network)
    static = ROOT / "pointengine" / "console" / "static"
    assets = {f"pointengine/console/static/{p.relative_to(static).as_posix()}"
              for p in static.rglob("*") if p.is_file() and p.name != "README.md"}
    assert assets <= have and "pointengine/console/static/index.html" in assets


@pytest.mark.slow
def test_site_packages_gets_no_top_level_adapters_or_load(installed: Installed,
                                                          tmp_path: Path) -> None:
    top = {p.name for p in installed.site_packages().iterdir()}
    assert "pointengine" in top
    assert not top & {"adapters", "load", "rules", "tests"}
    probe = ("import importlib.util as u, pointengine.adapters as a, pointengine.catalog.shipped "
             "as s; print(sorted(a.ADAPTERS), u.find_spec('adapters'), u.find_spec('load'), "
             "s.SHIPPED_RULES)")
    out = _run([installed.bin / "python", "-c", probe], tmp_path).stdout.split()
    assert out[:4] == ["['carrierpay',", "'quickpay',", "'towncoin',", "'transitcard']"]
    assert out[4:6] == ["None", "None"]
    assert Path(out[6]) == installed.site_packages().resolve() / "pointengine" / "rules"


@pytest.mark.slow
def test_the_demo_runs_from_an_empty_folder(installed: Installed, tmp_path: Path) -> None:
    done = _run([installed.bin / "pointengine", "demo", "--persons", "2000", "--events",
                 "20000"], tmp_path)
    assert "20,000 applied, 0 duplicates, 0 rejected" in done.stdout
    assert "national-phase2-card" in done.stdout
    ledger = tmp_path / "out" / "demo" / "ledger.jsonl"
    assert ledger.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    done = _run([installed.bin / "pointengine", "validate"], tmp_path)
    assert f"{len(load_catalog(RULES).programs)} programs and" in done.stdout


UNSUPPORTED = builds.interpreters(builds.unsupported_neighbours())


@pytest.mark.slow
@pytest.mark.parametrize("version", builds.unsupported_neighbours())
def test_pip_refuses_a_python_outside_the_declared_range(version: str, tmp_path: Path) -> None:
    if version not in UNSUPPORTED:
        pytest.skip(f"no Python {version} on this machine")
    source = builds.copy_of_the_tree(tmp_path / "src")
    _run([UNSUPPORTED[version], "-m", "venv", tmp_path / "venv"], tmp_path)
    done = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "--dry-run",
         "--no-deps", str(source)], cwd=tmp_path, env=_env(), capture_output=True, text=True,
        timeout=1_200, check=False)
    assert done.returncode != 0
    assert "requires a different Python" in done.stdout + done.stderr


def test_the_running_python_is_a_supported_one() -> None:
    # and so the slow tests always have at least this interpreter to build the wheel with
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in SUPPORTED
