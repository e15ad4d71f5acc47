"""The deployment files (docker-compose.yml, Dockerfile.gpu, Dockerfile.bot,
.env.example, .dockerignore) checked by reading them: no Docker engine needed.

`docker compose config` is run as well where a Compose CLI is installed."""

from __future__ import annotations

import ast
import fnmatch
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from shared.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE_GPU = ROOT / "Dockerfile.gpu"
DOCKERFILE_BOT = ROOT / "Dockerfile.bot"
DOCKERIGNORE = ROOT / ".dockerignore"

# Read by libraries rather than by Settings, but documented in .env.example.
EXTRA_ENV_VARS = {"HF_HUB_OFFLINE"}


# --- helpers -----------------------------------------------------------------


def settings_env_vars() -> set[str]:
    """Every variable Settings reads: its table (shared/settings.py)."""
    return {env for env, _default, _help in Settings.variables()}


def environment_reads(path: Path) -> set[str]:
    """Variables a module reads with os.environ.get / os.getenv / os.environ[...]."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}:
            first = node.args[0]
            names.add(first.value if isinstance(first, ast.Constant) else ast.unparse(first))
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            if isinstance(node.ctx, ast.Load):
                names.add(ast.unparse(node.slice))
    return names


def readme_config_rows() -> set[str]:
    """The variables of the README's configuration table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.M))


def env_example_lines() -> dict[str, str]:
    """The active KEY=value lines of .env.example."""
    out: dict[str, str] = {}
    for raw in ENV_EXAMPLE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f".env.example: not KEY=value: {raw!r}"
        assert key not in out, f".env.example sets {key} twice"
        out[key] = value
    return out


def compose_text_with_gpu1() -> str:
    """docker-compose.yml with the commented `worker-gpu1` example uncommented,
    the way an admin with a second GPU would."""
    lines = COMPOSE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*# worker-gpu1:", line))
    indent = lines[start][: lines[start].index("#")]
    out = lines[:start]
    i = start
    while i < len(lines) and lines[i].startswith(indent + "#"):
        body = lines[i][len(indent) + 1 :]
        out.append(indent + (body[1:] if body.startswith(" ") else body))
        i += 1
    return "\n".join(out + lines[i:]) + "\n"


def load_compose(text: str | None = None) -> dict[str, Any]:
    return yaml.safe_load(text if text is not None else COMPOSE.read_text())


def worker_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {name: svc for name, svc in compose["services"].items() if "worker" in command_of(svc)}
    assert found, "no service runs `daydream worker`"
    return found


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def gpu_device_ids(service: dict[str, Any]) -> list[str]:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    ids: list[str] = []
    for dev in devices:
        assert dev.get("driver") == "nvidia", dev
        assert "gpu" in dev.get("capabilities", []), dev
        assert "count" not in dev, f"`count` and `device_ids` are exclusive; pin GPUs with device_ids: {dev}"
        ids += [str(d) for d in dev.get("device_ids", [])]
    return ids


def seconds(duration: str | int) -> float:
    """A Compose duration (`120s`, `2m`, `1m30s`, `1500ms`) in seconds."""
    if isinstance(duration, int):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        instr, _, args = line.partition(" ")
        out.append((instr.upper(), args.strip()))
    assert not pending, f"{path.name} ends inside a continued line"
    return out


def arg_defaults(instructions: list[tuple[str, str]]) -> dict[str, str]:
    return dict(args.split("=", 1) for instr, args in instructions if instr == "ARG" and "=" in args)


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), text)


# --- .env.example ------------------------------------------------------------


def test_settings_table_holds_the_known_variables() -> None:
    # Guards the table itself: if it were empty, the next tests would pass vacuously.
    names = settings_env_vars()
    assert {"REDIS_URL", "DISCORD_TOKEN", "MODEL", "RESULT_TTL_S", "PROGRESS_INTERVAL_S"} <= names
    assert len(names) >= 15
    assert all(help_text for _env, _default, help_text in Settings.variables())


def test_only_the_settings_table_reads_the_environment() -> None:
    """A variable read anywhere else would escape the table, its checks and its docs."""
    sources = [p for d in ("bot", "worker", "shared", "daydream") for p in (ROOT / d).rglob("*.py")]
    assert len(sources) > 20
    readers = {str(p.relative_to(ROOT)): environment_reads(p) - EXTRA_ENV_VARS for p in sources}
    readers.pop("shared/settings.py")
    assert {path: names for path, names in readers.items() if names} == {}


def test_readme_documents_every_variable() -> None:
    rows = readme_config_rows()
    assert rows, "the README's configuration table was not found"
    assert rows == settings_env_vars()


def test_every_variable_is_documented_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text()
    lines = text.splitlines()
    for name in sorted(settings_env_vars() | EXTRA_ENV_VARS):
        at = [i for i, line in enumerate(lines) if re.fullmatch(rf"#?\s*{name}=.*", line)]
        assert at, f"{name} (read by Settings.from_env) is missing from .env.example"
        above = at[0] - 1  # skip the other variables of the same block
        while above >= 0 and re.fullmatch(r"#?\s*[A-Z][A-Z0-9_]*=.*", lines[above]):
            above -= 1
        assert above >= 0 and re.fullmatch(r"# \S.*", lines[above]), f"{name} has no comment above it"


def test_env_example_is_safe_and_parses_to_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    values = env_example_lines()
    assert values["DISCORD_TOKEN"] == "", "DISCORD_TOKEN must be empty in .env.example"
    for key, value in values.items():
        # Compose v1 keeps quotes and trailing `# …` in values; v2 strips them.
        assert not value.startswith(('"', "'")), f"{key}: no quotes in .env files"
        assert " #" not in value and value == value.strip(), f"{key}: no comments or spaces after a value"
    names = settings_env_vars()
    for name in names:
        monkeypatch.delenv(name, raising=False)
    for key, value in values.items():
        if key in names:
            monkeypatch.setenv(key, value)
    assert Settings.from_env() == Settings(), ".env.example must hold the built-in defaults"


def test_dot_env_is_git_ignored_and_untracked() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0, ".env must be git-ignored (it holds DISCORD_TOKEN)"
    tracked = subprocess.run(["git", "ls-files", "--", ".env"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert tracked.stdout == ""
    not_ignored = subprocess.run(["git", "check-ignore", "-q", ".env.example"], cwd=ROOT, check=False)
    assert not_ignored.returncode == 1, ".env.example must be committed"


# --- docker-compose.yml ------------------------------------------------------


def test_redis_is_append_only_with_a_volume_and_a_healthcheck() -> None:
    redis = load_compose()["services"]["redis"]
    assert str(redis["image"]).startswith("redis:7")
    cmd = command_of(redis)
    assert cmd[0] == "redis-server" and cmd[cmd.index("--appendonly") + 1] == "yes"
    assert any(str(v).endswith(":/data") for v in redis["volumes"]), "Redis data (/data) must be on a volume"
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])
    assert redis.get("restart") == "unless-stopped"
    assert "ports" not in redis, "an unauthenticated Redis must not be published"


def test_each_gpu_worker_pins_its_own_gpu() -> None:
    for text in (COMPOSE.read_text(), compose_text_with_gpu1()):
        compose = load_compose(text)
        workers = worker_services(compose)
        seen: dict[str, str] = {}
        for name, svc in workers.items():
            ids = gpu_device_ids(svc)
            assert len(ids) == 1, f"{name}: pin exactly one GPU with device_ids, got {ids}"
            assert ids[0] not in seen, f"{name} and {seen.get(ids[0])} share GPU {ids[0]}"
            seen[ids[0]] = name
            # Only the pinned GPU is visible in the container, as cuda:0.
            cmd = command_of(svc)
            assert cmd[:2] == ["daydream", "worker"] and cmd[cmd.index("--device") + 1] == "cuda:0", cmd
            deploy = svc.get("deploy", {})
            assert deploy.get("replicas", 1) == 1 and "scale" not in svc, f"{name}: replicas would share one GPU"
            assert deploy.get("mode", "replicated") != "global"
    assert set(worker_services(load_compose())) == {"worker-gpu0"}
    assert set(worker_services(load_compose(compose_text_with_gpu1()))) == {"worker-gpu0", "worker-gpu1"}


def test_workers_get_time_to_finish_a_job_on_stop() -> None:
    for name, svc in worker_services(load_compose(compose_text_with_gpu1())).items():
        assert seconds(svc.get("stop_grace_period", "10s")) >= 60, f"{name}: Docker SIGKILLs after 10 s by default"
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
        assert svc.get("restart") == "unless-stopped"


def test_bot_and_workers_reach_the_redis_service() -> None:
    compose = load_compose(compose_text_with_gpu1())
    services = compose["services"]
    users = {"bot": services["bot"], **worker_services(compose)}
    for name, svc in users.items():
        url = urlparse(environment_of(svc)["REDIS_URL"])
        assert url.scheme == "redis" and url.hostname in services and url.port == 6379, (name, url)
        assert services[url.hostname]["image"].startswith("redis"), name
        assert svc["depends_on"][url.hostname]["condition"] == "service_healthy", name
        env_files = svc.get("env_file", [])
        assert ".env" in ([env_files] if isinstance(env_files, str) else env_files), f"{name} must read .env"
    assert command_of(services["bot"]) == ["daydream", "bot"]
    assert services["bot"].get("restart") == "unless-stopped"
    assert "deploy" not in services["bot"], "the bot needs no GPU"


def test_workers_share_a_hub_cache_volume_at_hf_home() -> None:
    compose = load_compose(compose_text_with_gpu1())
    hf_home = dict(
        re.findall(r"(\w+)=(\S+)", " ".join(a for i, a in dockerfile_instructions(DOCKERFILE_GPU) if i == "ENV"))
    )["HF_HOME"]
    for name, svc in worker_services(compose).items():
        mounts = [str(v).split(":") for v in svc.get("volumes", [])]
        cache = [m[0] for m in mounts if len(m) >= 2 and m[1] == hf_home]
        assert cache, f"{name}: no volume at HF_HOME ({hf_home})"
        assert cache[0] in compose["volumes"], f"{name}: the hub cache must be a named volume"


def test_dashboard_is_optional_and_local_only() -> None:
    dashboard = load_compose()["services"]["dashboard"]
    assert "dashboard" in dashboard["profiles"]
    assert environment_of(dashboard)["RQ_DASHBOARD_REDIS_URL"] == "redis://redis:6379/0"
    assert all(str(p).startswith("127.0.0.1:") for p in dashboard["ports"]), "rq-dashboard has no login"


# --- Dockerfiles -------------------------------------------------------------


def test_gpu_image_installs_cuda_torch_first_and_runs_a_worker() -> None:
    instructions = dockerfile_instructions(DOCKERFILE_GPU)
    args = arg_defaults(instructions)
    base = substitute(next(a for i, a in instructions if i == "FROM"), args)
    assert base.startswith(("nvidia/cuda:", "pytorch/pytorch:")), base
    runs = [substitute(a, args) for i, a in instructions if i == "RUN"]
    torch_at = next(n for n, r in enumerate(runs) if re.search(r"pip install[^&]*\btorch\b", r))
    assert "download.pytorch.org/whl/cu" in runs[torch_at], "torch must come from a CUDA index"
    project_at = [n for n, r in enumerate(runs) if re.search(r"pip install[^&]*\"?\.\[worker,bot\]", r)]
    assert project_at and torch_at < min(project_at), "install torch before the project"
    assert not any(i == "ENV" and "HF_HUB_OFFLINE" in a for i, a in instructions), "HF_HUB_OFFLINE is the admin's call"
    check_common_image(instructions, ["daydream", "worker", "--device", "cuda:0"])


def test_bot_image_has_no_torch_or_cuda() -> None:
    instructions = dockerfile_instructions(DOCKERFILE_BOT)
    base = next(a for i, a in instructions if i == "FROM")
    assert "cuda" not in base and "pytorch" not in base, base
    runs = " ".join(a for i, a in instructions if i == "RUN")
    assert "torch" not in runs and not re.search(r"\.\[[^\]]*worker", runs), "the bot image needs no worker extra"
    assert re.search(r"pip install[^&]*\"?\.\[bot\]", runs)
    check_common_image(instructions, ["daydream", "bot"])


def check_common_image(instructions: list[tuple[str, str]], cmd: list[str]) -> None:
    users = [a for i, a in instructions if i == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "run as a non-root user"
    assert ("STOPSIGNAL", "SIGTERM") in instructions
    assert json.loads(next(a for i, a in reversed(instructions) if i == "CMD")) == cmd, "CMD in exec form"
    copied = [a.split()[:-1] for i, a in instructions if i == "COPY"]
    assert all(src not in {".", "./"} for srcs in copied for src in srcs), "copy only what the image needs"


# --- .dockerignore -----------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")]


def excluded(path: str, patterns: list[str]) -> bool:
    """Docker's rule, approximately: the last matching pattern wins, a pattern
    matching a parent folder excludes what is inside it. (fnmatch's `*` also
    crosses `/`, so this errs towards "excluded".)"""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        candidates = {pat, pat.removeprefix("**/")}
        if any(fnmatch.fnmatchcase(p, c) for p in prefixes for c in candidates):
            result = not negate
    return result


def test_dockerignore_keeps_secrets_out_and_the_code_in() -> None:
    patterns = dockerignore_patterns()
    for path in (".env", ".git/config", "shared/__pycache__/x.pyc", ".pytest_cache/v", "tests/conftest.py"):
        assert excluded(path, patterns), f"{path} must not reach the build context"
    tracked = subprocess.run(
        ["git", "ls-files", "--", "pyproject.toml", "bot", "shared", "worker"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    shipped = [str(p.relative_to(ROOT)) for p in (ROOT / "worker" / "models").rglob("*") if p.is_file()]
    needed = tracked + shipped
    assert "pyproject.toml" in needed and "shared/settings.py" in needed
    leaked = [p for p in needed if excluded(p, patterns)]
    assert not leaked, f".dockerignore drops files the images need: {leaked}"


# --- docker compose config (only where a Compose CLI is installed) ----------


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "version"], capture_output=True, check=False).returncode == 0:
        return [legacy]
    return None


_COMPOSE_CLI = _compose_cli()

if _COMPOSE_CLI is not None:

    def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
        cli = _COMPOSE_CLI
        assert cli is not None
        for name in ("Dockerfile.gpu", "Dockerfile.bot", ".dockerignore"):
            shutil.copy(ROOT / name, tmp_path / name)
        shutil.copytree(ROOT / "deploy", tmp_path / "deploy")  # the monitoring profile mounts prometheus.yml
        shutil.copy(ENV_EXAMPLE, tmp_path / ".env")  # what `cp .env.example .env` gives an admin
        for label, text in (("as shipped", COMPOSE.read_text()), ("with worker-gpu1", compose_text_with_gpu1())):
            (tmp_path / "docker-compose.yml").write_text(text)
            done = subprocess.run(
                [*cli, "--profile", "dashboard", "--profile", "monitoring", "config"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=False,
            )
            assert done.returncode == 0, f"{label}: {done.stderr}"
            resolved = yaml.safe_load(done.stdout)["services"]
            assert "dashboard" in resolved and "prometheus" in resolved, label
            # `environment` wins over env_file (.env has the localhost URL for runs outside Docker).
            for name in ("bot", "worker-gpu0"):
                assert environment_of(resolved[name])["REDIS_URL"] == "redis://redis:6379/0", (label, name)
            assert gpu_device_ids(resolved["worker-gpu0"]) == ["0"], label
            if label == "with worker-gpu1":
                assert gpu_device_ids(resolved["worker-gpu1"]) == ["1"]
