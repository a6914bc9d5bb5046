"""Packaging as production teams expect: runtime requirements apart from development ones, both pinned, and a
production image with the runtime packages only and without the sandbox.

Docker cannot run here, so the Dockerfile is read the way Docker reads it: stages, their bases and what each
copies and installs; the production image is the default target (the last stage) and everything it derives from.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

DEV_ONLY = {"pytest", "playwright", "hypothesis", "ruff", "py-spy", "pyinstrument", "xero-python", "lark"}
RUNTIME_CODE = ("include/xero_crm_sync", "plugins", "dags", "providers/xero/src")
PROVIDER = "providers/xero"


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)", line)
        assert match, f"{name}: not pinned exactly: {line!r}"
        pins[_canonical(match.group(1))] = match.group(3)
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_runtime_lock_has_no_development_packages() -> None:
    runtime = _pins("requirements.txt")
    assert "apache-airflow" in runtime and "great-expectations" in runtime
    assert not DEV_ONLY & runtime.keys(), (
        f"development packages in the runtime lock: {DEV_ONLY & runtime.keys()}"
    )


def test_development_lock_is_constrained_by_the_runtime_one() -> None:
    assert re.search(r"^-c requirements\.txt$", (REPO_ROOT / "requirements-dev.in").read_text(), re.MULTILINE)
    runtime, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    assert DEV_ONLY <= dev.keys()
    disagree = {
        name: (runtime[name], dev[name]) for name in runtime.keys() & dev.keys() if runtime[name] != dev[name]
    }
    assert not disagree, f"runtime and development pins disagree: {disagree}"


def _third_party_imports(folder: Path) -> set[str]:
    # The project's own modules: packages in include/, modules and packages in plugins/ (on Airflow's path), and
    # the provider's package (installed from providers/xero).
    own = ("include", "plugins", f"{PROVIDER}/src")
    first_party = {path.stem for folder in own for path in (REPO_ROOT / folder).iterdir()}
    names: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {
        n for n in names if n not in sys.stdlib_module_names and n not in first_party and n != "__future__"
    }


def test_everything_the_runtime_code_imports_is_in_the_runtime_lock() -> None:
    """A package only the development lock has would be missing in production: ImportError on a worker."""
    runtime = _pins("requirements.txt")
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for folder in RUNTIME_CODE:
        for module in _third_party_imports(REPO_ROOT / folder):
            if module == "xero_sandbox":  # the demo's (`make run`) only, imported lazily; never in the image
                continue
            dists = {_canonical(d) for d in providers.get(module, [])}
            assert dists, f"{folder} imports {module}, which no installed distribution provides"
            if not dists & runtime.keys():
                missing[module] = sorted(dists)
    assert not missing, f"runtime code imports packages missing from requirements.txt: {missing}"


def _stages(dockerfile: str) -> dict[str, dict[str, object]]:
    """name -> {base, copies: [(source, destination)], installs: [requirement files]}; in file order."""
    stages: dict[str, dict[str, object]] = {}
    current: dict[str, object] | None = None
    text = re.sub(r"\\\n", " ", dockerfile)
    for line in text.splitlines():
        line = line.strip()
        if match := re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE):
            name = match.group(2) or f"stage{len(stages)}"
            current = stages[name] = {"base": match.group(1), "copies": [], "installs": []}
        elif current is not None and line.upper().startswith(("COPY", "ADD")):
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            current["copies"] += [(source, parts[-1]) for source in parts[:-1]]  # type: ignore[operator]
        elif current is not None and line.upper().startswith("RUN") and "pip install" in line:
            current["installs"] += re.findall(r"-r\s+(\S+)", line)  # type: ignore[operator]
    return stages


def _production_chain() -> list[dict[str, object]]:
    stages = _stages((REPO_ROOT / "Dockerfile").read_text())
    chain = [list(stages.values())[-1]]  # `docker build` without --target builds the last stage
    while chain[-1]["base"] in stages:
        chain.append(stages[chain[-1]["base"]])  # type: ignore[index]
    return chain


def test_production_image_installs_runtime_requirements_only_and_ships_no_sandbox() -> None:
    chain = _production_chain()
    assert str(chain[-1]["base"]).startswith("apache/airflow:")
    copied = [(str(s), str(d)) for stage in chain for s, d in stage["copies"]]  # type: ignore[attr-defined]
    installed = [Path(str(f)).name for stage in chain for f in stage["installs"]]  # type: ignore[attr-defined]
    assert installed == ["requirements.txt"], installed
    sources = [s.rstrip("/") for s, _ in copied]
    assert "requirements-dev.txt" not in sources
    for source in sources:
        assert "xero_sandbox" not in source and source not in ("include", "."), f"the image copies {source}"
    for folder in ("include/xero_crm_sync", "sql", "plugins", "dags", PROVIDER):
        assert folder in sources, f"the image lacks {folder}"
    # The provider is pip-installed (Airflow finds providers by their entry point), without pulling anything the
    # runtime lock did not pin.
    dockerfile = re.sub(r"\\\n", " ", (REPO_ROOT / "Dockerfile").read_text())
    assert re.search(rf"pip install [^\n]*--no-deps [^\n]*/{PROVIDER}\b", dockerfile), (
        "the image does not install the provider"
    )
    # And the build context cannot leak secrets or the development environment into any stage.
    ignored = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!.env" not in ignored
