"""The package layering is a test, not a docstring: messages stands alone,
transport never reaches up into actors, and inside actors the layers only
import downward and never in a circle.

Imports are read with ``ast`` (nothing is imported), so a layering mistake
is reported even when it sits in a function body or under ``if
TYPE_CHECKING:``, which a runtime import check would miss.  The checkers take
a root path, and the second half of this module runs them on small fake trees
to prove that each rule can fail.
"""

from __future__ import annotations

import ast
import itertools
import textwrap
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("actors", "messages", "transport")

# The layers inside actors/, lowest first: a module may import from its own
# layer or any layer before it, never from one after it.  Each name is a
# top-level module (actors/errors.py) or a whole subpackage (actors/protocol/).
# The package face, actors/__init__.py, sits above all of them: it may import
# anything and nothing below may import it.  A name with no module yet (aio,
# metrics) is fine; a module with no name here fails
# test_every_actors_module_has_a_declared_layer, so new ones get placed on
# purpose.
ACTORS_LAYERS = [
    "errors",
    "answers",
    "logs",
    "lifetime",
    "protocol",
    "supervision",
    "ratelimit",
    "connection",
    "listening",
    "boot",
    "board",
    "compat",
    "placement",
    "connecting",
    "aio",
    "http_server",
    "cold_metrics",
    "scrape",
    "metrics",
    "app",
    "testing",
    "__main__",
]

# The layers inside transport/ and messages/, lowest first, as above.
# In transport, connections (the host's side) and virtual (the board's) are
# siblings on top of capture: neither imports the other
# (test_the_host_and_the_board_sides_of_transport_are_apart).
TRANSPORT_LAYERS = ["errors", "logs", "links", "capture", "connections", "virtual"]
TRANSPORT_SIBLINGS = ("connections", "virtual")
MESSAGES_LAYERS = [
    "errors",
    "validate",
    "sdp",
    "spinnaker",
    "scp",
    "eieio",
    "boot",
    "bmp",
]
LAYERS = {
    "actors": ACTORS_LAYERS,
    "transport": TRANSPORT_LAYERS,
    "messages": MESSAGES_LAYERS,
}

TOP_LEVEL = "top-level"
TYPE_CHECKING_ONLY = "TYPE_CHECKING"
FUNCTION_LEVEL = "function-level"


@dataclass(frozen=True, order=True)
class Import:
    """One import statement's edge from a module of ours to another of ours."""

    source: str
    target: str
    line: int
    kind: str = TOP_LEVEL

    def __str__(self) -> str:
        text = f"{self.source} -> {self.target} (line {self.line})"
        return text if self.kind == TOP_LEVEL else f"{text} [{self.kind}]"


@dataclass(frozen=True)
class Scan:
    """Every module found under the packages, and every import between them."""

    root: Path
    modules: dict[str, Path]
    imports: list[Import]

    def edges(self) -> set[tuple[str, str]]:
        """Distinct (importer, imported) pairs, whatever the statement kind."""
        return {(i.source, i.target) for i in self.imports}


def module_name(root: Path, path: Path) -> str:
    """actors/board/client.py -> actors.board.client; a package's
    __init__.py is the package itself."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: Sequence[str] = PACKAGES) -> dict[str, Path]:
    """Every .py file under the packages, by dotted module name."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(root, path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _import_nodes(
    nodes: Iterable[ast.AST], kind: str = TOP_LEVEL
) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement anywhere in the tree, with where it runs: the
    innermost function or TYPE_CHECKING block it sits in decides its kind."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, kind
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _import_nodes(ast.iter_child_nodes(node), FUNCTION_LEVEL)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.body, TYPE_CHECKING_ONLY)
            yield from _import_nodes(node.orelse, kind)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node), kind)


def _relative_base(module: str, is_package: bool, level: int) -> str | None:
    """The package a `from .`/`from ..` import starts from, or None when the
    dots climb out of the top package (an ImportError at runtime)."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 >= len(package):
        return None
    return ".".join(package[: len(package) - (level - 1)])


def module_imports(
    module: str, path: Path, modules: dict[str, Path], packages: Sequence[str]
) -> list[Import]:
    """The imports of one module that land in our packages.  `from a.b import
    c` imports module a.b.c when that is a module, else package a.b; parent
    packages that Python imports along the way are not counted."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[Import] = []
    for node, kind in _import_nodes(tree.body):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module
            if node.level:
                start = _relative_base(module, path.name == "__init__.py", node.level)
                if start is None:
                    continue
                base = f"{start}.{node.module}" if node.module else start
            assert base is not None  # `from import x` is a syntax error
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.append(submodule if submodule in modules else base)
        targets = list(dict.fromkeys(targets))  # from a import x, y: one edge
        found.extend(
            Import(module, target, node.lineno, kind)
            for target in targets
            if target.split(".")[0] in packages and target != module
        )
    return found


def scan(root: Path, packages: Sequence[str] = PACKAGES) -> Scan:
    """Read (never import) every module under root's packages."""
    modules = find_modules(root, packages)
    imports = [
        found
        for name, path in modules.items()
        for found in module_imports(name, path, modules, packages)
    ]
    return Scan(root, modules, sorted(imports))


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def foreign_imports(
    found: Scan, package: str, forbidden: Sequence[str]
) -> list[Import]:
    """Imports from modules of `package` into any of the `forbidden` packages."""
    return [
        i
        for i in found.imports
        if _inside(i.source, package) and any(_inside(i.target, f) for f in forbidden)
    ]


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every node reachable from start by one or more edges."""
    seen: set[str] = set()
    todo = deque(graph[start])
    while todo:
        node = todo.popleft()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def _shortest_cycle(
    graph: dict[str, set[str]], start: str, within: set[str]
) -> list[str]:
    """The shortest path start -> ... -> start through `within` (one exists)."""
    came_from: dict[str, str] = {}
    todo = deque([start])
    while todo:
        node = todo.popleft()
        for nxt in sorted(graph[node] & within):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if nxt not in came_from:
                came_from[nxt] = node
                todo.append(nxt)
    raise AssertionError(f"{start} is on no cycle")


@dataclass(frozen=True)
class Circle:
    """A strongly connected component of the module graph, which holds at
    least one import circle."""

    modules: list[str]
    shortest: list[Import]
    others: list[Import]


def import_cycles(found: Scan, package: str) -> list[Circle]:
    """Every strongly connected component of package's module graph that
    holds a circle: its modules, a shortest circle in it (one import per step)
    and the other imports between its modules.  (A module naming itself, e.g.
    an __init__ importing from its own package, is no circle between modules
    and is already dropped by the scan.)"""
    graph: dict[str, set[str]] = {
        m: set() for m in found.modules if _inside(m, package)
    }
    for source, target in found.edges():
        if source in graph and target in graph:
            graph[source].add(target)
    reach = {m: _reachable(graph, m) for m in graph}
    circles: list[Circle] = []
    done: set[str] = set()
    for module in sorted(graph):
        if module in done or module not in reach[module]:
            continue
        component = {m for m in reach[module] if module in reach[m]}
        done |= component
        path = min(
            (_shortest_cycle(graph, m, component) for m in sorted(component)), key=len
        )
        steps = list(itertools.pairwise(path))
        shortest = [
            next(i for i in found.imports if (i.source, i.target) == step)
            for step in steps
        ]
        others = [
            i
            for i in found.imports
            if i.source in component
            and i.target in component
            and (i.source, i.target) not in steps
        ]
        circles.append(Circle(sorted(component), shortest, others))
    return circles


def layer_of(module: str, package: str) -> str:
    """actors.protocol.window -> protocol; actors.errors -> errors."""
    return module[len(package) + 1 :].split(".")[0]


def undeclared_layers(found: Scan, package: str, order: Sequence[str]) -> list[str]:
    """Modules of package (other than its face) whose layer is not in order."""
    return sorted(
        f"{m} ({found.modules[m].relative_to(found.root).as_posix()})"
        for m in found.modules
        if _inside(m, package) and m != package and layer_of(m, package) not in order
    )


def upward_imports(found: Scan, package: str, order: Sequence[str]) -> list[Import]:
    """Imports inside package that reach a later layer of order, or the
    package face itself.  The face may import anything; imports within one
    layer are allowed (circles are import_cycles' business); modules of
    undeclared layers are undeclared_layers' business."""
    rank = {layer: n for n, layer in enumerate(order)}
    upward: list[Import] = []
    for i in found.imports:
        if i.source == package or not _inside(i.source, package):
            continue
        if i.target == package:
            upward.append(i)
        elif _inside(i.target, package):
            source, target = layer_of(i.source, package), layer_of(i.target, package)
            if source in rank and target in rank and rank[target] > rank[source]:
                upward.append(i)
    return upward


def fail_listing(headline: str, lines: Sequence[object]) -> None:
    """Fail with a headline and one offending import (or module) per line."""
    if lines:
        body = "\n".join(f"  {line}" for line in lines)
        pytest.fail(f"{headline} ({len(lines)}):\n{body}", pytrace=False)


def describe_cycles(circles: Sequence[Circle]) -> list[str]:
    """One block per component: its modules, a shortest circle import by
    import, then the other imports that tie it together."""
    blocks: list[str] = []
    for circle in circles:
        lines = [
            f"circle among {len(circle.modules)} modules: {', '.join(circle.modules)}"
        ]
        path = [circle.shortest[0].source, *(i.target for i in circle.shortest)]
        lines.append(f"    shortest: {' -> '.join(path)}")
        lines += [f"      {i}" for i in circle.shortest]
        if circle.others:
            lines.append(f"    other imports inside it ({len(circle.others)}):")
            lines += [f"      {i}" for i in circle.others]
        blocks.append("\n".join(lines))
    return blocks


# ---------------------------------------------------------------- real tree


@pytest.fixture(scope="module")
def tree() -> Scan:
    """The repository's own packages, read once for every rule."""
    return scan(ROOT)


def test_scan_sees_the_real_tree(tree: Scan) -> None:
    """Guard against a vacuous pass: the rules below mean nothing if the
    scan found no modules or no imports."""
    assert len(tree.modules) > 60, sorted(tree.modules)
    assert len(tree.edges()) > 150, len(tree.edges())
    assert "actors.protocol" in tree.modules  # a subpackage counts as a module
    assert ("actors.board.incarnations", "actors.connection.actor") in tree.edges()
    assert ("actors", "actors.board") in tree.edges()
    # Importing actors.protocol.window does not count as importing actors.
    assert not any(
        i.target == "actors" for i in tree.imports if i.source == "actors.board.client"
    )


def test_messages_imports_nothing_of_ours(tree: Scan) -> None:
    """messages is plain data and codecs: it stands alone below transport."""
    fail_listing(
        "messages must not import actors or transport",
        foreign_imports(tree, "messages", ["actors", "transport"]),
    )


def test_transport_never_imports_actors(tree: Scan) -> None:
    """transport (endpoints, the virtual board) sits below the actors."""
    fail_listing(
        "transport must not import actors",
        foreign_imports(tree, "transport", ["actors"]),
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_has_import_circles(tree: Scan, package: str) -> None:
    """A circle makes import order matter and the layers meaningless (an
    import under TYPE_CHECKING counts: it is a circle for a reader too).
    Packages import only downward, so no circle can cross two of them."""
    fail_listing(
        f"import circles inside {package}",
        describe_cycles(import_cycles(tree, package)),
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_only_import_downward(tree: Scan, package: str) -> None:
    """Each layer builds on those before it in its package's list (LAYERS),
    never after; nothing but the top may import the package face."""
    order = LAYERS[package]
    fail_listing(
        f"upward imports inside {package} (order, lowest first: {', '.join(order)};"
        f" the package face `{package}` is above all)",
        upward_imports(tree, package, order),
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_every_module_has_a_declared_layer(tree: Scan, package: str) -> None:
    """A new module or subpackage must be placed in its layers on purpose."""
    fail_listing(
        f"undeclared layer: add these to {package.upper()}_LAYERS in "
        "tests/test_layering.py",
        undeclared_layers(tree, package, LAYERS[package]),
    )


def sibling_imports(found: Scan, package: str, siblings: Sequence[str]) -> list[Import]:
    """Imports from one of ``siblings`` (layers of ``package``) into another."""
    return [
        i
        for i in found.imports
        if _inside(i.source, package)
        and _inside(i.target, package)
        and i.source != package
        and i.target != package
        and layer_of(i.source, package) in siblings
        and layer_of(i.target, package) in siblings
        and layer_of(i.source, package) != layer_of(i.target, package)
    ]


def test_the_host_and_the_board_sides_of_transport_are_apart(tree: Scan) -> None:
    """The virtual board never uses a host's connection, nor a connection
    the board: each stands on links and capture alone."""
    fail_listing(
        "imports between transport's connections and virtual",
        sibling_imports(tree, "transport", TRANSPORT_SIBLINGS),
    )


# ---------------------------------------------------------------- fake trees


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Lay out a fake source tree under root: {relative path: source}."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return root


LOW_HIGH = ["low", "mid", "high"]


def test_fake_upward_import_is_reported(tmp_path: Path) -> None:
    """A low layer importing a high one, at top level, is reported with its line."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "from actors.high import H\n",
                "actors/low.py": "import os\n\nfrom actors.high import H\n",
                "actors/high.py": "from actors.low import L\n",
            },
        )
    )
    assert upward_imports(found, "actors", LOW_HIGH) == [
        Import("actors.low", "actors.high", 3)
    ]
    assert (
        str(upward_imports(found, "actors", LOW_HIGH)[0])
        == "actors.low -> actors.high (line 3)"
    )


def test_fake_function_level_import_is_counted(tmp_path: Path) -> None:
    """An import hidden in a function (or method) body still breaks the layering."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/low/__init__.py": "",
                "actors/low/ops.py": """
                    class Ops:
                        def go(self) -> None:
                            from actors.high.machine import Machine
                    """,
                "actors/high/__init__.py": "",
                "actors/high/machine.py": "class Machine: ...\n",
            },
        )
    )
    assert upward_imports(found, "actors", LOW_HIGH) == [
        Import("actors.low.ops", "actors.high.machine", 3, FUNCTION_LEVEL)
    ]


def test_fake_type_checking_import_is_counted(tmp_path: Path) -> None:
    """An import under `if TYPE_CHECKING:` is counted; its else branch runs."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/low.py": """
                    import typing
                    from typing import TYPE_CHECKING

                    if TYPE_CHECKING:
                        from actors.high import H
                    else:
                        import actors.mid
                    if typing.TYPE_CHECKING:
                        import actors.mid
                    """,
                "actors/mid.py": "",
                "actors/high.py": "",
            },
        )
    )
    assert upward_imports(found, "actors", LOW_HIGH) == [
        Import("actors.low", "actors.high", 5, TYPE_CHECKING_ONLY),
        Import("actors.low", "actors.mid", 7, TOP_LEVEL),
        Import("actors.low", "actors.mid", 9, TYPE_CHECKING_ONLY),
    ]


def test_fake_circle_is_reported(tmp_path: Path) -> None:
    """A circle within one layer passes the layer rule but not the circle rule;
    a separate self-contained pair is a separate circle."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/mid/__init__.py": "from actors.mid.a import A\n",
                "actors/mid/a.py": "from actors.mid.b import B\n",
                "actors/mid/b.py": "def f() -> None:\n    from actors.mid.c import C\n",
                "actors/mid/c.py": "import actors.mid.a\n",
                "actors/low.py": "import actors.lower\n",
                "actors/lower.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import actors.low\n",
                "actors/high.py": "from actors.mid import a\n",
            },
        )
    )
    assert upward_imports(found, "actors", ["lower", "low", "mid", "high"]) == [
        Import("actors.lower", "actors.low", 3, TYPE_CHECKING_ONLY)
    ]
    assert import_cycles(found, "actors") == [
        Circle(
            ["actors.low", "actors.lower"],
            [
                Import("actors.low", "actors.lower", 1),
                Import("actors.lower", "actors.low", 3, TYPE_CHECKING_ONLY),
            ],
            [],
        ),
        # The package __init__ imports into the circle but is not on it.
        Circle(
            ["actors.mid.a", "actors.mid.b", "actors.mid.c"],
            [
                Import("actors.mid.a", "actors.mid.b", 1),
                Import("actors.mid.b", "actors.mid.c", 2, FUNCTION_LEVEL),
                Import("actors.mid.c", "actors.mid.a", 1),
            ],
            [],
        ),
    ]


def test_fake_circle_report_shows_shortest_circle_and_the_rest(tmp_path: Path) -> None:
    """In a tangle, the report leads with a shortest circle, then lists the
    other imports inside the component, each with its line."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/mid/__init__.py": "",
                "actors/mid/a.py": "import actors.mid.b\nimport actors.mid.c\n",
                "actors/mid/b.py": "import actors.mid.c\n",
                "actors/mid/c.py": "import os\nfrom actors.mid.a import A, B\n",
            },
        )
    )
    assert describe_cycles(import_cycles(found, "actors")) == [
        "circle among 3 modules: actors.mid.a, actors.mid.b, actors.mid.c\n"
        "    shortest: actors.mid.a -> actors.mid.c -> actors.mid.a\n"
        "      actors.mid.a -> actors.mid.c (line 2)\n"
        "      actors.mid.c -> actors.mid.a (line 2)\n"
        "    other imports inside it (2):\n"
        "      actors.mid.a -> actors.mid.b (line 1)\n"
        "      actors.mid.b -> actors.mid.c (line 1)"
    ]


def test_fake_package_face_may_import_anything_but_not_be_imported(
    tmp_path: Path,
) -> None:
    """`from actors import X` from inside actors reaches up to the face;
    `from actors import module` imports just that module."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "from actors.high import H\nfrom actors.low import L\n",
                "actors/low.py": "import actors\nfrom actors import mid\n",
                "actors/mid.py": "from actors import L\n",
                "actors/high.py": "",
            },
        )
    )
    assert upward_imports(found, "actors", LOW_HIGH) == [
        Import("actors.low", "actors", 1),
        Import("actors.low", "actors.mid", 2),
        Import("actors.mid", "actors", 1),
    ]


def test_fake_relative_imports_are_resolved(tmp_path: Path) -> None:
    """`from . import x`, `from .x import y`, `from .. import x` land on real modules."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "from . import low\nfrom .high import thing\n",
                "actors/low.py": "",
                "actors/high/__init__.py": "from .machine import Machine\nfrom . import helper\n",
                "actors/high/machine.py": "from ..low import L\nfrom .. import mid\nfrom . import X\n",
                "actors/high/helper.py": "",
                "actors/mid.py": "from .high import machine\nfrom ...outside import nothing\n",
            },
        )
    )
    assert found.imports == [
        Import("actors", "actors.high", 2),
        Import("actors", "actors.low", 1),
        Import("actors.high", "actors.high.helper", 2),
        Import("actors.high", "actors.high.machine", 1),
        Import("actors.high.machine", "actors.high", 3),
        Import("actors.high.machine", "actors.low", 1),
        Import("actors.high.machine", "actors.mid", 2),
        Import("actors.mid", "actors.high.machine", 1),
    ]


def test_fake_parent_packages_are_not_counted(tmp_path: Path) -> None:
    """`import actors.protocol.window` imports window, not actors or actors.protocol."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/protocol/__init__.py": "",
                "actors/protocol/window.py": "",
                "actors/board.py": "import actors.protocol.window\nimport os.path\nimport pykka\n",
            },
        )
    )
    assert found.imports == [Import("actors.board", "actors.protocol.window", 1)]


def test_fake_foreign_imports_are_reported(tmp_path: Path) -> None:
    """messages reaching for transport or actors, and transport for actors."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "import messages\nimport transport\n",
                "messages/__init__.py": "",
                "messages/scp.py": "def f() -> None:\n    import transport.connections.udp\n",
                "messages/sdp.py": "from actors import errors\nimport messages.scp\n",
                "transport/__init__.py": "import messages.sdp\n",
                "transport/connections/udp.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from actors.errors import E\n",
                "actors/errors.py": "",
            },
        )
    )
    assert foreign_imports(found, "messages", ["actors", "transport"]) == [
        Import("messages.scp", "transport.connections.udp", 2, FUNCTION_LEVEL),
        Import("messages.sdp", "actors.errors", 1),
    ]
    assert foreign_imports(found, "transport", ["actors"]) == [
        Import("transport.connections.udp", "actors.errors", 3, TYPE_CHECKING_ONLY)
    ]


def test_fake_undeclared_layers_are_reported(tmp_path: Path) -> None:
    """A new module file or subpackage not in the order is named, with its path."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "",
                "actors/low.py": "",
                "actors/stray.py": "",
                "actors/newpkg/__init__.py": "",
                "actors/newpkg/part.py": "from actors.high import H\n",
                "actors/high.py": "",
            },
        )
    )
    assert undeclared_layers(found, "actors", LOW_HIGH) == [
        "actors.newpkg (actors/newpkg/__init__.py)",
        "actors.newpkg.part (actors/newpkg/part.py)",
        "actors.stray (actors/stray.py)",
    ]
    # Layer order cannot judge a module it does not know.
    assert upward_imports(found, "actors", LOW_HIGH) == []


def test_fake_clean_tree_passes(tmp_path: Path) -> None:
    """Downward and same-layer imports are fine: the checkers stay quiet."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "actors/__init__.py": "from actors.high import H\nimport actors\n",
                "actors/low.py": "import messages\n",
                "actors/mid/__init__.py": "from actors.mid.a import A\n",
                "actors/mid/a.py": "from actors.mid.b import B\nimport actors.low\n",
                "actors/mid/b.py": "",
                "actors/high.py": "from actors.mid import A\nfrom actors.low import L\n",
                "messages/__init__.py": "",
                "transport/__init__.py": "import messages\n",
            },
        )
    )
    assert upward_imports(found, "actors", LOW_HIGH) == []
    assert import_cycles(found, "actors") == []
    assert undeclared_layers(found, "actors", LOW_HIGH) == []
    assert foreign_imports(found, "messages", ["actors", "transport"]) == []
    assert foreign_imports(found, "transport", ["actors"]) == []


def test_failure_message_lists_every_offence() -> None:
    """The message names each offending import as `module -> imported (line N)`."""
    with pytest.raises(pytest.fail.Exception) as failure:
        fail_listing(
            "upward", [Import("a.x", "a.y", 4), Import("a.x", "a.z", 9, FUNCTION_LEVEL)]
        )
    assert str(failure.value) == (
        "upward (2):\n  a.x -> a.y (line 4)\n  a.x -> a.z (line 9) [function-level]"
    )


def test_fake_transport_rules_fail_on_the_old_capture_circle(tmp_path: Path) -> None:
    """The circle transport had (an endpoint naming its capture under
    TYPE_CHECKING, the capture importing the endpoint) fails both the
    circle rule and transport's layers; a connection reaching into the
    virtual board fails the siblings rule."""
    found = scan(
        write_tree(
            tmp_path,
            {
                "transport/__init__.py": "",
                "transport/links/__init__.py": "",
                "transport/links/endpoint.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from transport.capture.writer import C\n",
                "transport/capture/__init__.py": "",
                "transport/capture/writer.py": "from transport.links.endpoint import E\n",
                "transport/connections/__init__.py": "",
                "transport/connections/udp.py": "from transport.virtual.board import B\n",
                "transport/virtual/__init__.py": "",
                "transport/virtual/board.py": "from transport.capture.writer import C\n",
            },
        )
    )
    assert set(upward_imports(found, "transport", TRANSPORT_LAYERS)) == {
        Import(
            "transport.links.endpoint",
            "transport.capture.writer",
            3,
            TYPE_CHECKING_ONLY,
        ),
        Import("transport.connections.udp", "transport.virtual.board", 1),
    }
    assert [c.modules for c in import_cycles(found, "transport")] == [
        ["transport.capture.writer", "transport.links.endpoint"]
    ]
    assert sibling_imports(found, "transport", TRANSPORT_SIBLINGS) == [
        Import("transport.connections.udp", "transport.virtual.board", 1)
    ]
    assert undeclared_layers(found, "transport", TRANSPORT_LAYERS) == []
