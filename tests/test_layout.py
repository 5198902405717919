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
    assert hasattr(pivot.QuantizedViT, "forward_branches")
    assert not hasattr(pivot.QuantizedViT, "forward_intermediates")
