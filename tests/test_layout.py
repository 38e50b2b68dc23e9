"""The package's layout: folders that follow the pipeline, no import cycles, a pinned surface.

Imports are read from the source (``.py`` and the compiled modules' ``.pyx``), wherever they
are: at the top, inside a function or under ``TYPE_CHECKING``, since each is a dependency.
"""

from __future__ import annotations

import re
from pathlib import Path

import pointengine
from tests.world import ROOT

PACKAGE = ROOT / "pointengine"
ORDER = ["errors", "model", "catalog", "store", "decide", "lane", "synth", "replay", "service",
         "console", "cli"]
"""The folders in pipeline order: a module imports from its own folder and earlier ones only."""

_IMPORT = re.compile(r"^\s*(?:from|import)\s+((?:pointengine|load|adapters)(?:\.\w+)*)", re.M)


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def _imports(path: Path) -> set[str]:
    return set(_IMPORT.findall(path.read_text(encoding="utf-8")))


def _graph(folder: Path) -> dict[str, set[str]]:
    files = [*folder.rglob("*.py"), *folder.rglob("*.pyx")]
    return {_module(path): _imports(path) for path in files}


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_each_folder_imports_only_the_folders_before_it() -> None:
    wrong = []
    for module, imports in _graph(PACKAGE).items():
        mine = _folder(module)
        if mine not in ORDER:
            continue
        for target in imports:
            theirs = _folder(target)
            if target.startswith("load"):
                wrong.append(f"{module} imports {target}: the runtime never imports load/")
            elif theirs in ORDER and ORDER.index(theirs) > ORDER.index(mine):
                wrong.append(f"{module} imports {target}, which comes later in the pipeline")
    assert wrong == []
    # pointengine/adapters links to the top-level adapters/ (tests/test_packaging.py)
    assert sorted(p.name for p in PACKAGE.iterdir()
                  if (p / "__init__.py").exists() and not p.is_symlink()) == sorted(ORDER[1:])


def test_the_engine_knows_the_store_contract_only() -> None:
    for module, imports in _graph(PACKAGE / "decide").items():
        stores = {t for t in imports if _folder(t) == "store"}
        assert stores <= {"pointengine.store.contract"}, module


def test_adapters_import_the_event_model_only() -> None:
    for module, imports in _graph(ROOT / "adapters").items():
        outside = {t for t in imports if t.startswith("pointengine")
                   and _folder(t) not in ("model", "errors", "adapters")}
        assert outside == set(), module
        assert not {t for t in imports if t.split(".")[0] in ("adapters", "load")}, (
            f"{module}: adapters are imported as pointengine.adapters only")


def test_only_the_service_and_the_command_import_adapters() -> None:
    # The engine never imports adapters; the service turns providers' bodies into events.
    for module, imports in _graph(PACKAGE).items():
        if any(_folder(t) == "adapters" or t.split(".")[0] == "adapters" for t in imports):
            assert _folder(module) in ("service", "cli", "adapters"), module


def test_everything_imports_adapters_by_their_installed_name() -> None:
    # A top-level "adapters" exists only in a checkout; the wheel has pointengine.adapters.
    folders = [PACKAGE, ROOT / "adapters", ROOT / "load", ROOT / "tests"]
    wrong = [f"{module} imports {target}" for folder in folders
             for module, imports in _graph(folder).items()
             for target in imports if target.split(".")[0] == "adapters"]
    assert wrong == []


def test_no_module_imports_itself_through_others() -> None:
    graph = _graph(PACKAGE)
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if target not in graph or target == module:
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_public_surface_is_pinned() -> None:
    assert pointengine.__all__ == [
        "AnyEvent", "Catalog", "Decision", "Engine", "FileSink", "InputError", "IntegrityError",
        "LedgerEntry", "ListSink", "MalformedEvent", "MemoryStore", "MyNumberRejected",
        "OperationalError", "PointEngineError", "Problem", "Program", "RefundExceedsPayment",
        "ReplayReport", "RuleFileError", "SignatureRejected", "Store", "UnknownMunicipality",
        "UnknownTransaction", "Verdict", "event_from_dict", "load_catalog", "parse_event",
        "read_ledger", "replay"]
    for name in pointengine.__all__:
        assert hasattr(pointengine, name), name
