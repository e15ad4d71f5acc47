"""The fleet's deployment files: docker-compose.yml's monitoring profile and
its Prometheus config, the Kubernetes manifests in deploy/k8s/ (parsed with
PyYAML, the fields that matter checked), and what scale-to-zero needs from
the queue: a job for an autoscaled model with no worker alive waits on the
very Redis list its ScaledObject watches."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.errors import NoWorkerAlive
from shared.settings import Settings
from shared.store import JobStore
from tests.support.jobs import announce_worker, make_job, queued_rq_ids

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
NAMESPACE = "daydream"


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def manifests() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


def by_name(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind(kind)}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


def config() -> dict[str, str]:
    return by_name("ConfigMap")["daydream-config"]["data"]


def fleet() -> dict[str, Any]:
    return tomllib.loads(by_name("ConfigMap")["daydream-models"]["data"]["models.toml"])["models"]


def worker_deployments() -> dict[str, dict[str, Any]]:
    """model → its worker Deployment."""
    out = {}
    for d in of_kind("Deployment"):
        args = container(d)["args"]
        if args[:2] == ["daydream", "worker"]:
            out[args[args.index("--model") + 1]] = d
    return out


# -- docker compose ---------------------------------------------------------------


def test_compose_gives_workers_a_grace_period_past_the_job_timeout() -> None:
    timeout = Settings().job_timeout_s
    for name, svc in compose()["services"].items():
        if "worker" in name:
            grace = svc["stop_grace_period"]
            assert grace.endswith("s") and int(grace[:-1]) > timeout, (name, grace, timeout)


def test_the_monitoring_profile_scrapes_the_bot_and_every_worker() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"] and "monitoring" in services["dashboard"]["profiles"]
    assert all(str(p).startswith("127.0.0.1:") for p in prometheus["ports"]), "Prometheus has no login"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"]}
    config_file = ROOT / mounted["/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load(config_file.read_text())["scrape_configs"]
    targets = {t for job in scrape for c in job["static_configs"] for t in c["targets"]}
    scraped = {name for name, svc in services.items() if "daydream" in " ".join(svc.get("command", []))}
    assert scraped == {"bot", "worker-gpu0"}
    for name in scraped:
        port = services[name]["environment"]["METRICS_PORT"]
        assert f"{name}:{port}" in targets, (name, targets)


# -- Kubernetes -------------------------------------------------------------------


def test_every_manifest_is_namespaced_and_names_are_unique() -> None:
    docs = manifests()
    assert {d["kind"] for d in docs} >= {"Namespace", "ConfigMap", "StatefulSet", "Service", "Deployment"}
    seen = set()
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == NAMESPACE, d["metadata"]
        key = (d["kind"], d["metadata"]["name"])
        assert key not in seen, key
        seen.add(key)
    assert not of_kind("Secret"), "secrets are created by hand (README), never committed"


def test_redis_keeps_an_append_only_file_on_a_volume_inside_the_cluster() -> None:
    redis = by_name("StatefulSet")["redis"]
    c = container(redis)
    assert c["args"][c["args"].index("--appendonly") + 1] == "yes"
    assert {m["mountPath"] for m in c["volumeMounts"]} == {"/data"}
    assert redis["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    assert "redis-cli" in c["readinessProbe"]["exec"]["command"]
    service = by_name("Service")["redis"]
    assert service["spec"]["type"] == "ClusterIP" and service["spec"]["ports"][0]["port"] == 6379
    assert config()["REDIS_URL"] == "redis://redis:6379/0"


def test_the_bot_is_one_replica_replaced_stop_first_without_a_gpu() -> None:
    bot = by_name("Deployment")["daydream-bot"]
    assert bot["spec"]["replicas"] == 1 and bot["spec"]["strategy"]["type"] == "Recreate"
    c = container(bot)
    assert c["args"] == ["daydream", "bot"]
    assert "nvidia.com/gpu" not in str(c.get("resources", {}))
    assert {"secretRef": {"name": "daydream-secrets"}} in c["envFrom"]


def test_one_gpu_worker_deployment_per_model_of_the_fleet_with_grace_past_the_job_timeout() -> None:
    workers = worker_deployments()
    assert set(workers) == set(fleet()) and len(workers) >= 2
    timeout = int(config()["JOB_TIMEOUT_S"])
    for model, d in workers.items():
        spec = d["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > timeout, model
        c = container(d)
        assert c["resources"]["limits"]["nvidia.com/gpu"] == 1, model
        assert c["args"][c["args"].index("--device") + 1] == "cuda:0", model
        assert {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v} == {
            "daydream-hf-cache"
        }
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert config()["HF_HOME"] in mounts and str(Path(config()["MODELS_FILE"]).parent) in mounts


def test_a_scaled_object_per_model_watches_its_lanes_queues_and_scales_to_zero() -> None:
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in of_kind("ScaledObject")}
    workers = worker_deployments()
    for model, d in workers.items():
        so = scaled[d["metadata"]["name"]]
        assert so["spec"]["minReplicaCount"] == 0 and so["spec"]["maxReplicaCount"] >= 1
        lanes = fleet()[model].get("lanes", ["turbo", "fast", "relax"])
        lists = {t["metadata"]["listName"] for t in so["spec"]["triggers"] if t["type"] == "redis"}
        assert lists == {f"rq:queue:daydream:{model}:{lane}" for lane in lanes}, model
        for t in so["spec"]["triggers"]:
            assert t["metadata"]["address"].startswith("redis.") and t["metadata"]["address"].endswith(":6379")
    assert set(config()["AUTOSCALED_MODELS"].split(",")) == set(workers)


# -- scale to zero through the real queue ------------------------------------------


def test_a_job_for_an_autoscaled_model_waits_on_the_list_its_scaled_object_watches(redis_url) -> None:
    settings = Settings(redis_url=redis_url, autoscaled_models=frozenset({"sdxl-turbo"}))
    store = JobStore(settings)
    announce_worker(store, "w1")  # a worker of another model; none of sdxl-turbo is up
    job = store.submit(make_job(model="sdxl-turbo"))
    [rq_id] = queued_rq_ids(store, "sdxl-turbo", "fast")
    assert rq_id.startswith(job.id)
    so = {d["metadata"]["name"]: d for d in of_kind("ScaledObject")}["daydream-worker-sdxl-turbo"]
    watched = {t["metadata"]["listName"] for t in so["spec"]["triggers"]}
    assert f"rq:queue:{store.dispatch.queue_name('sdxl-turbo', 'fast')}" in watched
    assert store.redis.llen(f"rq:queue:{store.dispatch.queue_name('sdxl-turbo', 'fast')}") == 1

    with pytest.raises(NoWorkerAlive) as refused:  # a model nobody serves, autoscaled or not
        store.submit(make_job(model="flux-dev"))
    assert "sdxl-turbo" in str(refused.value) and "embedded" in str(refused.value)
