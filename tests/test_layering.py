"""Layering rules that import-linter (make lint) cannot see, checked on the source: which imports must stay lazy,
no reaching into another package's private names, `__all__` in every package, and a light `import roost` /
`roost --help` (which modules get imported, never how long it takes)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOST = SRC / "roost"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The unit that owns a module: `roost.serve.app` -> `roost.serve`, `roost.workspace` -> itself."""
    return ".".join(module.split(".")[:2])


def _sources() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(ROOST.rglob("*.py"))}


SOURCES = _sources()


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_level_imports(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, imported module) for imports that run when the module is imported (not in functions or
    `if TYPE_CHECKING:` blocks)."""
    found: list[tuple[int, str]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((node.lineno, node.module))
                found.extend((node.lineno, f"{node.module}.{a.name}") for a in node.names)
            elif isinstance(node, ast.If):
                test = ast.unparse(node.test)
                if "TYPE_CHECKING" not in test:
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, (ast.With, ast.ClassDef)):
                visit(node.body)

    visit(tree.body)
    return found


# module (or package) -> what it must not import at module level, though it may import it inside a function.
LAZY_ONLY = {
    "roost.errors": ["roost."],  # the bottom of every import chain
    "roost._lazy": ["roost."],
    "roost.modelpkg": ["roost.registry"],  # a package on disk loads without a registry
}


@pytest.mark.parametrize("source", sorted(LAZY_ONLY))
def test_imports_that_must_stay_lazy(source):
    banned = LAZY_ONLY[source]
    bad = [
        f"{mod}:{line} imports {imported}"
        for mod, tree in SOURCES.items()
        if mod == source or mod.startswith(source + ".")
        for line, imported in _module_level_imports(tree)
        if any(imported == b or imported.startswith(b if b.endswith(".") else b + ".") for b in banned)
    ]
    assert bad == []


def test_module_level_import_finder_sees_what_it_must():
    """The checker above is not vacuous: it finds module-level imports and skips lazy / TYPE_CHECKING ones."""
    tree = ast.parse(
        "import a\nfrom b.c import d\nif TYPE_CHECKING:\n    import e\ntry:\n    import f\nexcept ImportError:\n"
        "    import g\ndef h():\n    import i\nclass K:\n    import j\n"
    )
    assert sorted(m for _, m in _module_level_imports(tree)) == ["a", "b.c", "b.c.d", "f", "g", "j"]


def _defined_private_names() -> dict[str, set[str]]:
    """unit -> private names it defines: functions, classes, module/class variables, `self._x` attributes."""
    owners: dict[str, set[str]] = {}
    for mod, tree in SOURCES.items():
        names = owners.setdefault(_unit(mod), set())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif isinstance(node, ast.keyword) and node.arg:
                names.add(node.arg)  # dataclass(...)/namedtuple fields passed by keyword
        owners[_unit(mod)] = {n for n in names if _is_private(n)}
    return owners


def cross_package_private_access() -> list[str]:
    """`x._name` / `from roost.y import _name` where `_name` is defined only in another roost unit."""
    owners = _defined_private_names()
    found = []
    for mod, tree in SOURCES.items():
        unit = _unit(mod)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("roost"):
                target = _unit(node.module)
                for a in node.names:
                    private = _is_private(a.name) or any(_is_private(p) for p in node.module.split(".")[2:])
                    if private and target != unit and target != "roost":
                        found.append(f"{mod}:{node.lineno} from {node.module} import {a.name}")
            elif isinstance(node, ast.Attribute) and _is_private(node.attr):
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                if node.attr in owners[unit]:
                    continue
                others = sorted(u for u, names in owners.items() if u != unit and node.attr in names)
                if others:
                    found.append(f"{mod}:{node.lineno} {ast.unparse(node)} (defined in {', '.join(others)})")
    return found


def test_no_reaching_into_other_packages_private_names():
    assert cross_package_private_access() == []


def private_imports() -> list[str]:
    """`from roost.a.b import _name` in any other module: a module's private names are its own (e.g. training/auto.py
    uses the public functions of training/api.py)."""
    return [
        f"{mod}:{node.lineno} from {node.module} import {a.name}"
        for mod, tree in SOURCES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("roost.")
        for a in node.names
        if _is_private(a.name) and node.module != mod
    ]


def test_no_module_imports_another_modules_private_names():
    assert private_imports() == []


def test_private_access_finder_is_not_vacuous(monkeypatch):
    fake = {
        "roost.a.m": ast.parse("def _helper():\n    pass\nclass S:\n    def _rows(self):\n        return self._rows\n"),
        "roost.b.n": ast.parse("from roost.a.m import _helper\ndef f(st):\n    return st._rows() + st._unknown\n"),
    }
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", fake)
    assert cross_package_private_access() == [
        "roost.b.n:1 from roost.a.m import _helper",
        "roost.b.n:3 st._rows (defined in roost.a)",
    ]
    assert private_imports() == ["roost.b.n:1 from roost.a.m import _helper"]


# Alembic's script folders are packages only so that setuptools ships them; nothing imports them as an API.
PACKAGES = sorted(
    name for name in (_module_name(p.parent) for p in ROOST.rglob("__init__.py")) if ".migrations" not in name
)


def _declares_all(tree: ast.Module) -> bool:
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_declares_all(package):
    assert _declares_all(SOURCES[package]), f"{package}/__init__.py has no __all__"


@pytest.mark.parametrize("package", ["roost", "roost.notebook", "roost.model_import", "roost.byom", "roost.scoring"])
def test_all_names_resolve(package):
    """Every name a lazy package exports is importable (a typo in its table would fail only on first use)."""
    code = (
        f"import importlib, json; p = importlib.import_module({package!r}); "
        "print(json.dumps([n for n in p.__all__ if getattr(p, n, None) is None]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    assert json.loads(out.stdout) == []


# Third-party top-level modules allowed in `import roost` and in `roost --help` (Typer and what it needs).
LIGHT_IMPORTS = {"_distutils_hack", "typing_extensions"}
# Typer and its own dependencies (Typer's parameter adapters import pydantic when a command parses arguments).
HELP_IMPORTS = LIGHT_IMPORTS | {"typer", "click", "shellingham", "annotated_doc"}
HELP_IMPORTS |= {"pydantic", "pydantic_core", "annotated_types", "typing_inspection"}


def _third_party_after(code: str) -> list[str]:
    probe = (
        "import sys\n"
        f"{code}\n"
        "names = {m.split('.')[0] for m in sys.modules}\n"
        "stdlib = set(sys.stdlib_module_names) | {'roost', '__main__'}\n"
        "print(sorted(n for n in names if n not in stdlib and not n.startswith('_sysconfigdata')))\n"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])


def test_import_roost_imports_no_third_party_module():
    assert (
        set(
            _third_party_after(
                "import roost, roost.notebook, roost.model_import, roost.byom, roost.training, roost.scoring; "
                "roost.__version__"
            )
        )
        <= LIGHT_IMPORTS
    )


def test_roost_help_and_every_group_help_import_only_typer():
    code = (
        "import contextlib, io\n"
        "from roost.cli.main import build_app, main\n"
        "app = build_app()\n"
        "names = [g.name for g in app.registered_groups] + [c.name for c in app.registered_commands]\n"
        "assert len(names) >= 10, names\n"
        "for argv in [['--help']] + [[n, '--help'] for n in names]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
    )
    assert set(_third_party_after(code)) <= HELP_IMPORTS


def test_train_and_predict_are_plain_functions_next_to_plain_packages():
    """`roost.train` / `roost.predict` are the functions (the CLI verbs' twins), whatever was imported before them;
    the packages are `roost.training` / `roost.scoring`, plain modules (no module-class swap), and the old package
    paths are gone."""
    code = (
        "import importlib, types, roost\n"
        "import roost.training.api, roost.scoring.api\n"
        "assert type(roost.training) is types.ModuleType and type(roost.scoring) is types.ModuleType\n"
        "assert isinstance(roost.train, types.FunctionType) and roost.train is roost.training.api.train\n"
        "assert isinstance(roost.predict, types.FunctionType) and roost.predict is roost.scoring.api.predict\n"
        "for old in ('roost.train', 'roost.predict'):\n"
        "    try:\n"
        "        importlib.import_module(old)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    raise AssertionError(old + ' still imports')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
