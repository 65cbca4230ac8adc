"""What a task's cache key sees of its code: its source, and the user code and module constants it reaches by name.

From the task function the walk follows, breadth first, every global name its code (and its nested functions,
comprehensions, lambdas) loads, its closure variables, its default values and `__wrapped__` (functools.wraps):
- a function or class defined in a USER module (any module whose file is outside the standard library,
  site-packages and roost itself; a module without a file, such as a notebook's `__main__`, is user code) adds its
  source text and its code object (bytecode, constants, names: what actually runs, so a module left imported after
  its file was edited is not taken for the new code) and is walked in turn; a user module used as `mod.name` is
  followed through the names the code loads;
- a value bound to a module-level name adds that value: scalars, strings, tuples, lists, dicts and sets (sorted,
  so the key is the same under any PYTHONHASHSEED), numpy arrays and pandas objects by content, other objects by
  their repr when it reads like a constructor call; a repr with a memory address or in angle brackets
  (`<Logger x (INFO)>`) describes the process, so such a value is keyed on its type name only;
- a closure variable adds its value only when it is immutable (a list a test appends to would change every key);
- library and stdlib code is not followed (its version is the library's business); roost's own code adds
  `roost.__version__`.
The walk keeps a visited set and stops at MAX_DEPTH names from the task or MAX_OBJECTS objects (logged). Line
numbers and module names are left out, so adding lines above a task or moving the project keeps its key.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import inspect
import logging
import os
import re
import site
import sys
import sysconfig
import types
from collections import deque
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from roost.pipeline.fingerprint import TAG, canonical_json

log = logging.getLogger(__name__)

MAX_DEPTH = 100  # names followed from the task function, one level per global name, closure or attribute
MAX_OBJECTS = 5000  # functions, classes and constants in one key
MAX_NESTING = 64  # containers inside containers in a constant
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{8,}|\bid='?\d{6,}")  # a repr naming a memory address


def code_hash(fn: Callable[..., Any]) -> str:
    """A hash of `fn`'s code and the user code and constants it reaches; the same in every process for the same code."""
    walk = _Walk(getattr(fn, "__qualname__", repr(type(fn))))
    walk.run(fn)
    return hashlib.sha256("\n".join(sorted(walk.entries)).encode()).hexdigest()[:16]


# -- where an object comes from -----------------------------------------------------------------------------------
@functools.cache
def _library_roots() -> tuple[str, ...]:
    """Folders whose modules are library code: the standard library and every site-packages."""
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(getattr(site, "getsitepackages", list)())
    if site.ENABLE_USER_SITE:
        paths.add(site.getusersitepackages())
    return tuple(sorted(os.path.realpath(p) + os.sep for p in paths if p))


@functools.cache
def _roost_root() -> str:
    import roost

    return os.path.realpath(os.path.dirname(roost.__file__)) + os.sep


@functools.cache
def _origin_of_file(file: str) -> str:
    real = os.path.realpath(file)
    if real.startswith(_roost_root()):
        return "roost"
    return "library" if real.startswith(_library_roots()) else "user"


def _origin(obj: Any) -> str:
    """'user', 'roost' or 'library', by the file that defined `obj` (a function: the file its code came from)."""
    code = getattr(obj, "__code__", None)
    if isinstance(obj, types.FunctionType) and isinstance(code, types.CodeType) and os.path.isabs(code.co_filename):
        return _origin_of_file(code.co_filename)  # not __module__: functools.wraps copies that from the wrapped one
    modname = obj.__name__ if isinstance(obj, types.ModuleType) else getattr(obj, "__module__", None)
    if modname is None and isinstance(obj, types.FunctionType):
        return "user"  # made by exec without a module name
    if not isinstance(modname, str) or modname == "builtins" or modname in sys.builtin_module_names:
        return "library"
    mod = obj if isinstance(obj, types.ModuleType) else sys.modules.get(modname)
    file = getattr(mod, "__file__", None)
    return _origin_of_file(file) if isinstance(file, str) else "user"  # no file: a notebook, the REPL, exec


def _is_code(obj: Any) -> bool:
    return (
        isinstance(
            obj,
            (types.FunctionType, type, functools.partial, types.MethodType, staticmethod, classmethod, property),
        )
        or _wrapped(obj) is not None
    )


def _wrapped(obj: Any) -> Any:
    """What functools.wraps/update_wrapper stored on `obj` (a decorator's wrapper, a roost Task), else None."""
    try:
        return vars(obj).get("__wrapped__")
    except Exception:  # noqa: BLE001 - no __dict__ (TypeError), or a proxy whose __dict__ raises
        return None


def _qualname(obj: Any) -> str:
    return str(getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__qualname__)


# -- code objects -----------------------------------------------------------------------------------------------
def _const(c: Any) -> Any:
    """A code object's constant as JSON, the same in every process (frozensets sorted)."""
    if isinstance(c, types.CodeType):
        return _code(c)
    if isinstance(c, (tuple, frozenset)):
        items = [_const(x) for x in c]
        if isinstance(c, frozenset):
            items.sort(key=canonical_json)
        return [type(c).__name__, items]
    return [type(c).__name__, repr(c)]


def _code(co: types.CodeType) -> list[Any]:
    """What runs: bytecode, constants, names and arguments; no line numbers or file name."""
    return [
        co.co_name,
        co.co_code.hex(),
        [_const(c) for c in co.co_consts],
        list(co.co_names),
        list(co.co_varnames),
        list(co.co_freevars),
        [co.co_argcount, co.co_posonlyargcount, co.co_kwonlyargcount],
    ]


def _names(co: types.CodeType) -> list[str]:
    """Every name the code and the code nested in it loads (globals and attributes), first use first."""
    out = list(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            out.extend(_names(c))
    return list(dict.fromkeys(out))


_class_sources: dict[tuple[str, int, int, str], str | None] = {}  # (file, size, mtime, qualname) -> source


def _source(obj: Any) -> str | None:
    """The source text of a code object or class, None where there is none (exec, REPL)."""
    memo = None
    if isinstance(obj, type):  # inspect parses the whole module file for a class: once per file version
        file: str | None = None
        st: os.stat_result | None = None
        try:
            file = inspect.getsourcefile(obj)
            st = os.stat(file) if file else None
        except (OSError, TypeError):
            pass
        if file and st is not None:
            memo = (file, st.st_size, st.st_mtime_ns, obj.__qualname__)
            if memo in _class_sources:
                return _class_sources[memo]
    try:
        src: str | None = inspect.getsource(obj)
    except Exception:  # noqa: BLE001 - OSError/TypeError (no file: exec, REPL), or a file that no longer parses
        src = None
    if memo is not None:
        if len(_class_sources) > 10_000:
            _class_sources.clear()
        _class_sources[memo] = src
    return src


# -- the walk ---------------------------------------------------------------------------------------------------
class _Walk:
    """One breadth-first walk from a task function; `entries` are the JSON lines its key hashes."""

    def __init__(self, root_name: str) -> None:
        self.root_name = root_name
        self.entries: set[str] = set()
        self.seen: set[int] = set()
        self.keep: list[Any] = []  # the objects seen stay alive, so their ids are not reused during the walk
        self.globals_seen: set[tuple[int, str]] = set()
        self.queue: deque[tuple[Any, int]] = deque()
        self.cut = False

    def run(self, root: Any) -> None:
        """Walk from `root` until everything reachable within the bounds is in `entries`."""
        library = _origin(root) == "library"
        self.entries.add(
            canonical_json(["root", _qualname(root), getattr(root, "__module__", None) if library else None])
        )
        if _is_code(root):
            self.add(root, 0, root=True)
        else:  # a callable object: its class and its value
            self.entries.add(canonical_json(["root", self.value(root, 0, [])]))
        while self.queue:
            obj, depth = self.queue.popleft()
            self.visit(obj, depth)
        if self.cut:
            log.warning(
                "task %s: its code reaches more than %d objects or %d names deep; what lies beyond is not in its "
                "cache key",
                self.root_name,
                MAX_OBJECTS,
                MAX_DEPTH,
            )

    def add(self, obj: Any, depth: int, root: bool = False) -> None:
        """Queue a function, class or wrapper to visit (once)."""
        if id(obj) in self.seen:
            return
        if depth > MAX_DEPTH or len(self.seen) >= MAX_OBJECTS:
            self.cut = True
            return
        self.seen.add(id(obj))
        self.keep.append(obj)
        if root:
            self.visit(obj, depth, root=True)
        else:
            self.queue.append((obj, depth))

    def visit(self, obj: Any, depth: int, root: bool = False) -> None:
        """Add one object's entry and queue what it references."""
        if isinstance(obj, (staticmethod, classmethod, types.MethodType)):
            self.add(obj.__func__, depth + 1)
            if isinstance(obj, types.MethodType):
                self.add(type(obj.__self__), depth + 1)
            return
        if isinstance(obj, property):
            for f in (obj.fget, obj.fset, obj.fdel):
                if f is not None:
                    self.add(f, depth + 1)
            return
        if isinstance(obj, functools.partial):
            self.add(obj.func, depth + 1)
            self.entries.add(
                canonical_json(["partial", self.value(list(obj.args), depth, []), self.value(obj.keywords, depth, [])])
            )
            return
        defined, inner = isinstance(obj, (types.FunctionType, type)), _wrapped(obj)
        if inner is not None:  # functools.wraps, from any decorator (a library's too), or a roost Task: the wrapped
            self.add(inner, depth + 1 if defined else depth, root=root and not defined)
        if not defined:
            return
        origin = _origin(obj)
        if origin == "roost":
            import roost

            self.entries.add(
                canonical_json(["roost", roost.__version__])
            )  # roost's code is versioned by roost's version
        if origin != "user":  # not followed; a task function from roost or a library keys on its own code, as before
            if root and isinstance(obj, types.FunctionType):
                self.visit_function(obj, depth, follow=False)
            elif root:
                self.entries.add(canonical_json(["class", _qualname(obj), _source(obj), []]))
            return
        if isinstance(obj, type):
            self.visit_class(obj, depth)
        else:
            self.visit_function(obj, depth, follow=True)

    def visit_function(self, fn: types.FunctionType, depth: int, follow: bool) -> None:
        """Source and code of a function; its globals, closure, defaults when it is user code."""
        co = fn.__code__
        self.entries.add(canonical_json(["function", _qualname(fn), _source(co), _code(co)]))
        if not follow:
            return
        names = _names(co)
        for name in names:
            if name in fn.__globals__:
                self.global_value(fn.__globals__, name, names, depth + 1)
        for name, cell in zip(co.co_freevars, fn.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell: a name assigned later in the enclosing function
                continue
            self.closure_value(f"{_qualname(fn)}:{name}", value, depth + 1)
        for i, value in enumerate(fn.__defaults__ or ()):
            self.closure_value(f"{_qualname(fn)}:default{i}", value, depth + 1)
        for name, value in sorted((fn.__kwdefaults__ or {}).items()):
            self.closure_value(f"{_qualname(fn)}:{name}", value, depth + 1)

    def visit_class(self, cls: type, depth: int) -> None:
        """Source of a class; its methods and user base classes are walked."""
        src = _source(cls)
        members = sorted(vars(cls).items())
        attrs = [] if src is not None else [[k, self.value(v, depth, [])] for k, v in members if not _is_code(v)]
        self.entries.add(canonical_json(["class", _qualname(cls), src, attrs]))
        for _, member in members:
            if _is_code(member):
                self.add(member, depth + 1)
        for base in cls.__mro__[1:]:
            self.add(base, depth + 1)

    def global_value(self, namespace: dict[str, Any], name: str, names: list[str], depth: int) -> None:
        """A module-level name the code loads: code is walked, a user module followed, a constant's value added."""
        if (id(namespace), name) in self.globals_seen:
            return
        self.globals_seen.add((id(namespace), name))
        value = namespace[name]
        try:
            if _is_code(value):
                self.add(value, depth)
            elif isinstance(value, types.ModuleType):
                if _origin(value) == "user":  # `helpers.clean(x)`: the names the code loads, looked up in `helpers`
                    for n in names:
                        if n in vars(value):
                            self.global_value(vars(value), n, names, depth + 1)
            else:
                self.entries.add(canonical_json(["constant", name, self.value(value, depth, [])]))
        except Exception as exc:  # noqa: BLE001 - a proxy object that raises on inspection: keyed by type only
            self.unkeyed(name, value, exc)

    def closure_value(self, label: str, value: Any, depth: int) -> None:
        """A closure variable or default value: code is walked, an immutable value added, a mutable one left out."""
        try:
            if _is_code(value):
                self.add(value, depth)
            elif _immutable(value):
                self.entries.add(canonical_json(["closure", label, self.value(value, depth, [])]))
        except Exception as exc:  # noqa: BLE001 - as in global_value
            self.unkeyed(label, value, exc)

    def unkeyed(self, name: str, value: Any, exc: Exception) -> None:
        """Key a value that could not be inspected on its name and type alone."""
        log.debug("%s: %s (a %s) is not in the cache key: %s", self.root_name, name, type(value), exc)
        self.entries.add(canonical_json(["unkeyed", name, type(value).__qualname__]))

    def value(self, v: Any, depth: int, stack: list[int]) -> Any:
        """A JSON stand-in for a constant's value that keeps its type; code inside it is walked."""
        if v is None or type(v) in (bool, int, float, str):
            return v
        if isinstance(v, enum.Enum):
            self.add(type(v), depth + 1)
            return {f"{TAG}enum": f"{type(v).__qualname__}.{v.name}"}
        if isinstance(v, (int, float, complex, str)):  # numpy scalars, str subclasses
            return {TAG + type(v).__qualname__: repr(v)}
        if len(stack) >= MAX_NESTING or id(v) in stack:
            return {f"{TAG}cycle": type(v).__qualname__}
        if isinstance(v, (list, tuple, dict, set, frozenset)):
            inner = [*stack, id(v)]
            if isinstance(v, dict):
                return {
                    f"{TAG}dict": [[self.value(k, depth, inner), self.value(x, depth, inner)] for k, x in v.items()]
                }
            items = [self.value(x, depth, inner) for x in v]
            if isinstance(v, (set, frozenset)):
                items.sort(key=canonical_json)
            return items if type(v) is list else {TAG + type(v).__qualname__: items}
        if _is_code(v):
            self.add(v, depth + 1)
            return {
                f"{TAG}code": f"{getattr(v, '__module__', '')}.{_qualname(v)}"
                if _origin(v) == "library"
                else _qualname(v)
            }
        if isinstance(v, types.ModuleType):
            return {f"{TAG}module": v.__name__}
        if isinstance(v, (bytes, bytearray)):
            return {f"{TAG}bytes": hashlib.sha256(v).hexdigest()}
        if isinstance(v, PurePath):
            return {f"{TAG}path": str(v)}
        self.add(type(v), depth + 1)  # an instance of a user class: the class's code joins the key
        data = _data_digest(v)
        if data is not None:
            return {f"{TAG}data": data}
        try:
            text = repr(v)
        except Exception:  # noqa: BLE001 - a broken __repr__: the value is not keyed
            text = None
        if text is None or text.startswith("<") or _ADDRESS.search(text):  # <Logger x (INFO)>, <console width=80>:
            log.debug("%s: a %s has no stable repr; its value is not in the cache key", self.root_name, type(v))
            return {f"{TAG}unkeyed": type(v).__qualname__}
        return {f"{TAG}repr": [type(v).__qualname__, text]}


def _data_digest(v: Any) -> list[Any] | None:
    """numpy arrays and pandas frames/series by content (their reprs abbreviate), else None."""
    mod = type(v).__module__.split(".")[0]
    try:
        if mod == "numpy" and hasattr(v, "tobytes") and not v.dtype.hasobject:
            return [type(v).__qualname__, str(v.dtype), list(v.shape), hashlib.sha256(v.tobytes()).hexdigest()]
        if mod == "pandas" and hasattr(v, "to_numpy"):
            import pandas as pd

            rows = pd.util.hash_pandas_object(v, index=True).to_numpy().tobytes()
            cols = [str(c) for c in getattr(v, "columns", [getattr(v, "name", None)])]
            dtypes = [str(d) for d in getattr(v, "dtypes", [getattr(v, "dtype", None)])]
            return [type(v).__qualname__, cols, dtypes, hashlib.sha256(rows).hexdigest()]
    except Exception as exc:  # noqa: BLE001 - unhashable cells (lists in a frame): fall back to the repr
        log.debug("no content digest for a %s: %s", type(v), exc)
    return None


def _immutable(v: Any) -> bool:
    """True for values that cannot change after the task was defined (scalars, strings, paths, tuples of them)."""
    if v is None or isinstance(v, (bool, int, float, complex, str, bytes, PurePath, enum.Enum, range)):
        return True
    return isinstance(v, (tuple, frozenset)) and all(_immutable(x) for x in v)
