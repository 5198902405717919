"""Every ```python block of README.md and of the pages in docs/ runs as written, and every docs
page the README links to exists."""
import ast
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCKS = [(page.relative_to(ROOT).as_posix(), n, block) for page in PAGES
          for n, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))]


def test_readme_has_python_examples():
    assert any(page == "README.md" for page, _, _ in BLOCKS)


def test_readme_links_to_docs_pages_that_exist():
    # docs/architecture.md is written with the C layering; every other linked page must be here.
    links = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", (ROOT / "README.md").read_text()))
    assert {"docs/architecture.md", "docs/zoo.md", "docs/performance.md"} <= links
    missing = sorted(link for link in links if link != "docs/architecture.md" and not (ROOT / link).is_file())
    assert missing == []


def _missing_modules(block):
    """Top-level modules the block imports that this Python cannot find (e.g. ray, from the
    optional `ray` extra, which the `test` extra does not install)."""
    names = set()
    for node in ast.walk(ast.parse(block)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def _fashion_mnist_installed():
    import pivot.datasets
    return os.path.isdir(os.environ.get("PIVOT_FASHION_MNIST") or pivot.datasets.DEFAULT_ROOT)


def test_missing_modules_finds_only_absent_imports():
    assert _missing_modules("import numpy, pivot.distributed as pd\nfrom pivot import sim") == []
    assert _missing_modules("import os\nimport no_such_module_xyz.sub\nfrom also_absent_xyz import a") == \
        ["also_absent_xyz", "no_such_module_xyz"]


def _reads_full_fashion_mnist(block):
    return re.search(r"datasets\.fashion_mnist\(", re.sub(r"#.*", "", block)) is not None  # not in comments


# A block that reads the full Fashion-MNIST runs on 60,000 images (minutes): a slow test.
PARAMS = [pytest.param(page, n, block, id=f"{page}#{n}",
                       marks=[pytest.mark.slow] if _reads_full_fashion_mnist(block) else [])
          for page, n, block in BLOCKS]


@pytest.mark.parametrize("page,index,block", PARAMS)
def test_readme_block_runs(page, index, block, tmp_path):
    missing = _missing_modules(block)
    if missing:
        pytest.skip(f"{page} block {index} imports {', '.join(missing)}, not installed (an optional extra)")
    if _reads_full_fashion_mnist(block) and not _fashion_mnist_installed():
        pytest.skip(f"{page} block {index} reads the full Fashion-MNIST: dataset-fashion-mnist not installed")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{page} block {index}:\n{done.stderr}"
