"""The rules the architecture depends on, as tests (ARCHITECTURE.md, STYLE.md):
dependencies point one way (bot → shared ← worker; the CLI above all three),
the bot never loads torch, only the store's modules touch Redis and only
dispatch touches RQ, and no module grows past what one reader holds."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "bot", "worker", "daydream")
MAX_MODULE_LINES = 400
MAX_TEST_HELPER_LINES = 800

# package -> top-level modules it must never import
FORBIDDEN = {
    "shared": {"discord", "torch", "diffusers", "transformers", "bot", "worker", "daydream"},
    "bot": {"torch", "diffusers", "transformers", "worker", "daydream", "redis", "rq"},
    "worker": {"discord", "bot", "daydream", "redis", "rq"},
}
# Only the store's modules talk to Redis, and only dispatch to RQ.
REDIS_MODULES = {
    "shared/store.py",
    "shared/images.py",
    "shared/claims.py",
    "shared/leases.py",
    "shared/scheduler.py",
    "shared/policy.py",
    "shared/usage.py",
    "shared/dispatch.py",
    "shared/connection.py",
    "shared/redelivery.py",
    "shared/moderation.py",
}
RQ_MODULES = {"shared/dispatch.py"}


def sources(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "models" not in p.relative_to(ROOT / package).parts]


def imported_roots(path: Path) -> set[str]:
    """Top-level names a module imports, wherever in the module (lazy imports too)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_scan_sees_the_imports() -> None:
    # Guards the scan: these are known to be there.
    assert "discord" in imported_roots(ROOT / "bot" / "app.py")
    assert "torch" in imported_roots(ROOT / "worker" / "runtime.py")
    assert "rq" in imported_roots(ROOT / "shared" / "dispatch.py")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    broken = {
        str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package])
        for p in sources(package)
        if imported_roots(p) & FORBIDDEN[package]
    }
    assert broken == {}


def test_only_the_store_touches_redis_and_only_dispatch_touches_rq() -> None:
    redis_users, rq_users = set(), set()
    for package in PACKAGES:
        for p in sources(package):
            roots = imported_roots(p)
            if "redis" in roots:
                redis_users.add(str(p.relative_to(ROOT)))
            if "rq" in roots:
                rq_users.add(str(p.relative_to(ROOT)))
    # The throwaway redis-server launcher of the demo and the tests pings its own server.
    assert redis_users - {"daydream/redis_server.py"} <= REDIS_MODULES
    assert rq_users == RQ_MODULES


def test_the_bot_never_loads_torch() -> None:
    code = "import sys, bot.app, bot.buttons, bot.reactions, bot.imagine, daydream.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'diffusers', 'transformers', 'worker'}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shared_loads_neither_discord_nor_torch() -> None:
    modules = " ".join(f"shared.{p.stem}" for p in sources("shared") if p.stem != "__init__")
    code = f"import sys, importlib; [importlib.import_module(m) for m in {modules.split()!r}]; print(sorted(m for m in sys.modules if m.split('.')[0] in {{'discord', 'torch', 'bot', 'worker', 'daydream'}}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_production_module_is_too_long_to_hold_in_mind() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for package in PACKAGES
        for p in sources(package)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_test_helper_is_too_long() -> None:
    helpers = [p for p in (ROOT / "tests").rglob("*.py") if not p.name.startswith("test_")]
    assert helpers
    long = {
        str(p.relative_to(ROOT)): n for p in helpers if (n := len(p.read_text().splitlines())) > MAX_TEST_HELPER_LINES
    }
    assert long == {}


def test_test_modules_never_import_each_other() -> None:
    offenders = {}
    for p in (ROOT / "tests").rglob("test_*.py"):
        tree = ast.parse(p.read_text())
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        bad = [n for n in names if n.split(".")[-1].startswith("test_") or ".conftest" in n or n == "conftest"]
        if bad:
            offenders[str(p.relative_to(ROOT))] = bad
    assert offenders == {}
