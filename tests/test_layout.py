"""The package layout: the library (``import pivot``) and the applications (``pivot.apps``)."""
import ast
import pathlib
import subprocess
import sys
import tomllib

import pytest

import pivot

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_pivot_cka_is_the_module_and_linear_cka_the_function():
    import pivot.cka
    assert type(pivot.cka).__name__ == "module"
    assert pivot.cka.__name__ == "pivot.cka"
    assert pivot.linear_cka is pivot.cka.cka
    x = [[0.0, 1.0], [1.0, 0.5], [2.0, 3.0], [0.5, 0.1]]
    assert pivot.linear_cka(x, x) == pytest.approx(1.0)


def test_library_does_not_expose_or_import_the_applications():
    assert not hasattr(pivot, "demo") and "demo" not in pivot.__all__
    code = "import sys, pivot; print(sorted(m for m in sys.modules if m.startswith('pivot.apps')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def _imports(file: pathlib.Path):
    tree = ast.parse(file.read_text(), str(file))
    package = ".".join(file.relative_to(ROOT).with_suffix("").parts[:-1])
    if file.name == "__init__.py":
        package = ".".join(file.relative_to(ROOT).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def test_no_library_module_imports_an_application():
    # pivot/__main__.py (``python -m pivot``) is the command's entry point, an application itself.
    offenders = []
    for file in sorted((ROOT / "pivot").rglob("*.py")):
        if "apps" in file.relative_to(ROOT / "pivot").parts or file.name == "__main__.py":
            continue
        offenders += [f"{file.relative_to(ROOT)}: {name}" for name in _imports(file)
                      if name == "pivot.apps" or name.startswith("pivot.apps.")]
    assert offenders == []


def test_test_helpers_are_not_installed_modules():
    assert not (ROOT / "pivot" / "tools").exists()
    assert (ROOT / "tests" / "leakcheck.py").is_file()


def test_console_script_is_pivot_apps_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"pivot": "pivot.apps.cli:main"}
    from pivot.apps import cli
    assert callable(cli.main)


def test_python_m_pivot_runs_the_cli():
    env_path = str(ROOT)
    run = lambda *argv: subprocess.run([sys.executable, "-m", "pivot", *argv], capture_output=True, text=True,
                                       cwd=ROOT, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    done = run("--help")
    assert done.returncode == 0 and "{sim,cka,search,quantize,demo}" in done.stdout
    bad = run("sim", "--dataflow", "xx")
    assert bad.returncode == 2 and "--dataflow" in bad.stderr.strip().splitlines()[-1]


def test_forward_branches_has_no_old_name():
    assert hasattr(pivot.ViT, "forward_branches") and not hasattr(pivot.ViT, "forward_intermediates")
    assert not hasattr(pivot, "QuantizedViT")  # int8 is a precision of pivot.ViT, not a second class


def _pivot_module_graph() -> dict:
    """module name -> the pivot modules it imports (module-level and inside functions), read with ast.
    ``from . import x`` counts as importing ``pivot.x`` when that is a module; a package's
    ``__init__`` stands for the package."""
    files = {}
    for file in sorted((ROOT / "pivot").rglob("*.py")):
        parts = file.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = file
    graph = {}
    for name, file in files.items():
        targets = set()
        for imported in _imports(file):
            # the longest prefix that is a pivot module: "pivot.sim.hardware.ZCU102" -> "pivot.sim.hardware"
            parts = imported.split(".")
            for n in range(len(parts), 0, -1):
                candidate = ".".join(parts[:n])
                if candidate in files:
                    if candidate != name:
                        targets.add(candidate)
                    break
        graph[name] = targets
    return graph


def _cycles(graph: dict) -> list:
    """Every strongly connected component of more than one module (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_two_pivot_modules_import_each_other():
    # A package's __init__ re-exporting its submodules is not a cycle with them: the submodules
    # import their siblings, never the package itself (``from . import x`` inside pivot/sim/ is
    # pivot.sim.x). Everything else must form no ring, directly or through others.
    graph = _pivot_module_graph()
    assert "pivot.sim.hardware" in graph and "pivot._validate" in graph
    packages = {name for name in graph if (ROOT / name.replace(".", "/") / "__init__.py").exists()}
    pruned = {name: {t for t in targets if not (name in packages and t.startswith(name + "."))}
              for name, targets in graph.items()}
    assert _cycles(pruned) == []


def test_the_cycle_finder_finds_a_ring():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_module_is_reachable_by_attribute():
    # A module named like a function its package exports (pivot.sim.simulate, pivot.path_score)
    # would be shadowed by that function: ``import pivot.x.y as m`` would give the function.
    import importlib
    shadowed = []
    for name in _pivot_module_graph():
        if name.startswith("pivot.apps") or name == "pivot.__main__":
            continue
        module = importlib.import_module(name)
        parent, _, leaf = name.rpartition(".")
        if parent and getattr(importlib.import_module(parent), leaf, None) is not module:
            shadowed.append(name)
    assert shadowed == []
