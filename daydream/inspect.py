"""`daydream job` and `daydream status`: what a job is, what the queue holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from daydream.submit import write_result
from shared import messages, reports
from shared.settings import Settings
from shared.store import JobStore


def cmd_job(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    job = store.get(args.job_id)
    written = write_result(store, job, args.output)
    public = job.public()
    # Where it waits, and roughly how long until it starts (None once it left the queue).
    public["position"] = store.dispatch.position(job) if job.state == "queued" else None
    public["eta_s"] = store.eta(job, public["position"])
    if args.json:
        print(json.dumps(public))
    else:
        for key, value in public.items():
            print(f"{key:>16}: {value}")
        if written:
            print(f"{'written':>16}: {written}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    store = JobStore(settings)
    workers = store.dispatch.live_workers()
    depths = store.dispatch.depths()
    recent = store.recent(args.recent)
    depth = sum(depths.values())
    if args.json:
        status = {"queue_depth": depth, "queues": depths, "workers": workers, "recent": [r.public() for r in recent]}
        print(json.dumps(status))
        return 0
    print(f"queues: {depth} waiting" + "".join(f"\n  {name}: {n}" for name, n in depths.items() if n))
    print(f"workers alive: {len(workers)}")
    for w, report in zip(workers, reports.workers_report_of(workers), strict=True):
        job = w.get("current_job") or "idle"
        models = ",".join(w.get("models", []))
        print(
            f"  {w['name']}  {w['device']}  model={models}  jobs done={w['jobs_done']}  now: {job}  "
            f"{report.images_per_minute:.1f} images/min{messages.worker_figures(report)}"
        )
    print("recent jobs:")
    for r in recent:
        took = f"{(r.finished_at or 0) - (r.started_at or 0):.1f}s" if r.finished_at and r.started_at else ""
        print(f"  {r.id}  {r.kind:<9} {r.state:<9} {took:>7}  {r.prompt[:50]}")
    return 0


def add_job_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id")
    p.add_argument("-o", "--output", type=Path)
    p.add_argument("--json", action="store_true")
