"""Issue 22's speed harness: a 2×2 grid through Daydream's diffusers engine, as
a worker runs it (progress callback every step, a preview whenever an edit is
due), on the full-size SD 1.5 (512², 25 steps, guidance), SDXL (1024², 30
steps, guidance) and FLUX.1 [schnell] (1024², 4 steps) architectures with
random weights (benchmarks/fullsize_archs.py: no download, built in memory on
the GPU; the engine gets the pipeline in place of a folder to load).

Rows: diffusers' documented defaults (fp16 — bf16 for FLUX.1, whose card
says so —, SDPA, previews decoded by the VAE) as the baseline; each of
Daydream's switches (worker/engines/speed.py) alone; the worker's defaults on
CUDA together; and the optional ones on top of them. For each: seconds per
grid (median), images per second, peak GPU memory, the denoiser's share of
the grid, the fraction of the GPU's bf16 peak it reaches (FLOPs of one
denoiser call counted by torch.utils.flop_counter, times the calls; the
peak measured by a large bf16 matmul in the same run), the speed-up over the
baseline, and for the quantized rows the distance to the bf16 images from
the same seeds (PSNR: ≥ 30 dB counts as holding). Then the first-job latency
of a worker: model load and warm-up (every --ar size when compiled), then a
first job at --ar 3:2 and a second one.

    python benchmarks/gpu_sampler.py                       # a GPU, every model (budget: --budget-s)
    python benchmarks/gpu_sampler.py --models sdxl --rows baseline,daydream
    python benchmarks/gpu_sampler.py --tiny                # CPU: tiny random pipelines, in seconds
    python benchmarks/gpu_sampler.py --flops-only          # FLOPs per step, full size, meta device
    python benchmarks/gpu_sampler.py --shallow --size 64 --steps 1   # CPU: full-size widths, one layer each

A row that cannot run here (compile in --tiny mode, CUDA graphs on a CPU,
torchao missing, a step cache for a UNet, the time budget spent) is printed
with the reason instead of figures."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_name  # noqa: E402

logger = logging.getLogger("gpu_sampler")

PROMPT = "a lighthouse at dusk"
SEEDS = (1, 2, 3, 4)
QUALITY_PSNR_DB = 30.0  # a quantized row holds its quality at or above this against bf16
PEAK_MATMUL = {"cuda": 8192, "cpu": 1024}  # side of the square matmul that measures the peak
TINY = {"sd15": (32, 2), "sdxl": (64, 2), "flux": (32, 2)}  # tile size, steps
COLUMNS = (
    "model", "row", "applied", "s/grid", "images/s", "peak GiB", "denoiser s", "TFLOP/grid", "% of peak",
    "× baseline", "PSNR vs",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    options: dict[str, Any]  # SpeedOptions fields over the baseline's
    needs: tuple[str, ...] = ()  # "cuda", "compile", "torchao", "transformer", "unet"
    against: str = "baseline"  # the PSNR of its images against this row's ("daydream" for quantized ones)


# The worker's defaults on CUDA (SpeedOptions.for_device with every setting at auto).
DAYDREAM = {"bf16": True, "channels_last": True, "fuse_qkv": True, "compile": True, "latent_previews": True}
ROWS = (
    Row("baseline", "diffusers defaults: fp16 (FLUX.1: bf16), SDPA, VAE previews", {}),
    Row("daydream", "the worker's defaults: bf16 + channels_last + fuse_qkv + compile + latent previews", DAYDREAM,
        ("compile",)),
    Row("bf16", "bf16 weights", {"bf16": True}),
    Row("channels_last", "channels-last convolutions", {"channels_last": True}),
    Row("fuse_qkv", "fused QKV projections", {"fuse_qkv": True}),
    Row("latent_previews", "previews from latents, no VAE decode", {"latent_previews": True}),
    Row("compile", "torch.compile (regional, every block)", {"compile": True}, ("compile",)),
    Row("step_cache", "first-block cache, threshold 0.1", {"step_cache": 0.1}, ("transformer",)),
    Row("deep_cache", "DeepCache, the whole UNet every 3rd step", {"deep_cache": 3}, ("unet",)),
    Row("cuda_graphs", "compile + CUDA graphs (reduce-overhead)", {"compile": True, "cuda_graphs": True},
        ("compile", "cuda")),
    Row("daydream+cuda_graphs", "the defaults + CUDA graphs", {**DAYDREAM, "cuda_graphs": True}, ("compile", "cuda")),
    Row("daydream+int8", "the defaults + int8 weights and activations", {**DAYDREAM, "quantize": "int8"},
        ("compile", "torchao"), "daydream"),
    Row("daydream+fp8", "the defaults + fp8 weights and activations", {**DAYDREAM, "quantize": "fp8"},
        ("compile", "torchao", "cuda"), "daydream"),
    Row("daydream+step_cache", "the defaults + first-block cache 0.1", {**DAYDREAM, "step_cache": 0.1},
        ("compile", "transformer"), "daydream"),
    Row("daydream+deep_cache", "the defaults + DeepCache every 3rd step", {**DAYDREAM, "deep_cache": 3},
        ("compile", "unet"), "daydream"),
)  # fmt: skip


@dataclass
class Result:
    model: str
    row: str
    applied: str = ""
    skipped: str = ""  # the reason, when the row did not run
    grid_s: list[float] = field(default_factory=list)
    denoiser_s: float | None = None  # per grid, median
    denoiser_calls: int = 0
    flops_per_grid: float | None = None
    peak_gib: float | None = None
    psnr_db: float | None = None
    psnr_against: str = ""
    images: Any = field(default=None, repr=False)  # kept for the PSNR of later rows

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.grid_s) if self.grid_s else None


# -- the machine ------------------------------------------------------------------------
def machine(device) -> dict[str, Any]:
    import diffusers
    import torch
    import transformers

    info = {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpu": f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads",
    }
    try:
        import torchao

        info["torchao"] = torchao.__version__
    except ImportError:
        info["torchao"] = "not installed"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            driver=_driver(),
        )
    return info


def _driver() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=False,
        )  # fmt: skip
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak(device) -> tuple[float, str]:
    """FLOP/s of a large square matmul in bf16; on a CPU also in fp32 (the tiny rows' dtype,
    and a CPU without bf16 units is faster in it), the higher one."""
    import torch

    n = PEAK_MATMUL[device.type]
    dtypes = (torch.bfloat16,) if device.type == "cuda" else (torch.bfloat16, torch.float32)
    best = (0.0, "")
    for dtype in dtypes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            a @ b
        sync(device)
        iters = 20 if device.type == "cuda" else 5
        t = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync(device)
        flops = 2 * n**3 * iters / (time.perf_counter() - t)
        best = max(best, (flops, f"{n}×{n}×{n} {str(dtype).removeprefix('torch.')} matmul"))
    return best


# -- FLOPs ------------------------------------------------------------------------------
def flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    def cpu_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
        return sdpa_flop_count(query, key, value)

    # The CPU's fused attention kernel is not in flop_counter's table (CUDA's are).
    return FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: cpu_sdpa}
    )


def flops_only(models: list[str]) -> list[dict[str, Any]]:
    """FLOPs of one denoiser step at the issue's sizes, the full-size architectures on the meta device."""
    import torch

    from benchmarks import fullsize_archs as archs

    out = []
    for name in models:
        _family, size, steps = archs.MODELS[name]
        batch = 4 if name == "flux" else 8  # four images; SD and SDXL evaluate both guidance halves
        model = archs.denoiser(name)
        for images, b in ((1, batch // 4), (4, batch)):
            with torch.inference_mode(), flop_counter() as fc:
                model(**archs.denoiser_inputs(name, b, size, size))
            out.append(
                {"model": name, "size": size, "images": images, "batch": b, "steps": steps,
                 "tflop_per_step": fc.get_total_flops() / 1e12}
            )  # fmt: skip
        del model
    return out


# -- one engine per row -------------------------------------------------------------------
@contextmanager
def in_memory(pipe_for):
    """DiffusersEngine loads `AutoPipelineForText2Image.from_pretrained(source, dtype=…)`:
    here that call hands back the pipeline built in memory, in the dtype the engine asks for."""
    from diffusers import AutoPipelineForText2Image

    original = AutoPipelineForText2Image.__dict__["from_pretrained"]
    AutoPipelineForText2Image.from_pretrained = staticmethod(lambda _source, dtype, **_kw: pipe_for(dtype))
    try:
        yield
    finally:
        AutoPipelineForText2Image.from_pretrained = original


class Sampler:
    """Makes the engine of a (model, speed options) pair, as a worker makes it."""

    def __init__(self, args: argparse.Namespace, device, workdir: Path) -> None:
        self.args, self.device, self.workdir = args, device, workdir
        self.folders: dict[str, Path] = {}

    def size_steps(self, name: str) -> tuple[int, int]:
        from benchmarks.fullsize_archs import MODELS

        size, steps = TINY[name] if self.args.tiny else MODELS[name][1:]
        return self.args.size or size, self.args.steps or steps

    def engine(self, name: str, options):
        from benchmarks import fullsize_archs as archs
        from shared.fleet import ModelEntry
        from worker.engines.diffusers_engine import DiffusersEngine

        family_name = archs.MODELS[name][0]
        size, steps = self.size_steps(name)
        if self.args.tiny:
            entry = ModelEntry(name=family_name, source=str(self.tiny_folder(name)), size=size, steps=steps)
            return DiffusersEngine(entry, device=str(self.device), speed=options)
        entry = ModelEntry(name=family_name, source=f"(in memory) {family_name}", size=size, steps=steps)
        with in_memory(lambda dtype: archs.build(name, dtype, self.device, shallow=self.args.shallow)):
            return DiffusersEngine(entry, device=str(self.device), speed=options)

    def tiny_folder(self, name: str) -> Path:
        if name not in self.folders:
            from tests.support.tiny_families import build_tiny_flux
            from tests.support.tiny_sd import build_tiny_sd, build_tiny_sdxl

            build = {"sd15": build_tiny_sd, "sdxl": build_tiny_sdxl, "flux": build_tiny_flux}[name]
            self.folders[name] = build(self.workdir)
        return self.folders[name]


class DenoiserClock:
    """Times every call of the denoiser (CUDA events on a GPU) and keeps the first call's
    arguments, for counting its FLOPs afterwards."""

    def __init__(self, module, device) -> None:
        import torch

        self.device, self.spans, self.first = device, [], None
        self.cuda = device.type == "cuda"
        self._torch = torch
        self.handles = [
            module.register_forward_pre_hook(self._pre, with_kwargs=True),
            module.register_forward_hook(self._post),
        ]

    def _pre(self, _module, args, kwargs):
        if self.first is None:
            self.first = (args, dict(kwargs))
        if self.cuda:
            start = self._torch.cuda.Event(enable_timing=True)
            start.record()
            self.spans.append([start, None])
        else:
            self.spans.append([time.perf_counter(), None])

    def _post(self, _module, _args, _out):
        if self.cuda:
            end = self._torch.cuda.Event(enable_timing=True)
            end.record()
            self.spans[-1][1] = end
        else:
            self.spans[-1][1] = time.perf_counter()

    def take(self) -> tuple[float, int]:
        """(seconds spent in the denoiser, calls) since the last take."""
        sync(self.device)
        if self.cuda:
            seconds = sum(a.elapsed_time(b) for a, b in self.spans) / 1000
        else:
            seconds = sum(b - a for a, b in self.spans)
        calls = len(self.spans)
        self.spans = []
        return seconds, calls

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def progress_as_a_worker(interval_s: float):
    """The worker's progress: every step reported, a preview built when an edit is due."""
    last = {"at": float("-inf")}

    def progress(_fraction: float, preview) -> None:
        if preview is not None and time.monotonic() - last["at"] >= interval_s:
            last["at"] = time.monotonic()
            preview()

    return progress


def psnr(a, b) -> float:
    import numpy as np

    x = np.stack([np.asarray(im, dtype=np.float64) for im in a])
    y = np.stack([np.asarray(im, dtype=np.float64) for im in b])
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


# -- the run ------------------------------------------------------------------------------
class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def why_not(row: Row, name: str, args: argparse.Namespace, device) -> str:
    import importlib.util

    if "cuda" in row.needs and device.type != "cuda":
        return "needs CUDA"
    if "torchao" in row.needs and importlib.util.find_spec("torchao") is None:
        return "torchao is not installed"
    if "transformer" in row.needs and name != "flux":
        return "diffusers' first-block cache serves transformer denoisers; this is a UNet (see deep_cache)"
    if "unet" in row.needs and name == "flux":
        return "DeepCache skips a UNet's deep blocks; this is a transformer (see step_cache)"
    if row.name == "compile" and device.type == "cpu" and not args.compile_on_cpu:
        return "a CPU compile outlasts the run (--compile-on-cpu includes it)"
    if row.name == "bf16" and name == "flux":
        return "the baseline is bf16 already (FLUX.1's documented dtype)"
    return ""


def run_row(sampler: Sampler, name: str, row: Row, budget: Budget, results: dict[str, Result]) -> Result:
    import torch

    from shared.settings import Settings
    from worker.engines.base import Request
    from worker.engines.speed import SpeedOptions, denoiser_of

    args, device = sampler.args, sampler.device
    result = Result(name, row.name)
    reason = why_not(row, name, args, device)
    if not reason and budget.left() < args.row_min_s:
        reason = f"time budget spent ({args.budget_s:.0f} s)"
    if reason:
        result.skipped = reason
        logger.info("%s / %s: skipped (%s)", name, row.name, reason)
        return result
    options = replace(SpeedOptions(bf16=name == "flux", latent_previews=False), **row.options)
    left_out = ""
    if options.compile and device.type == "cpu" and not args.compile_on_cpu:
        # A CPU compile outlasts the run: the row runs without it (--compile-on-cpu includes it).
        options, left_out = replace(options, compile=False), " (compile left out: CPU)"
    t0 = time.perf_counter()
    engine = sampler.engine(name, options)
    sync(device)
    dtype = str(engine.pipe.dtype).removeprefix("torch.")
    result.applied = ", ".join((dtype, *engine.speedups)) + (", latent previews" if options.latent_previews else "")
    result.applied += left_out
    size, steps = sampler.size_steps(name)
    req = Request.text(PROMPT, list(SEEDS), size, size, steps=steps)
    clock = DenoiserClock(denoiser_of(engine.pipe), device)
    interval = Settings().progress_interval_s
    try:
        # A compiled denoiser compiles in the first call; CUDA graphs record in the next ones.
        for _ in range(args.warmup + (1 if options.compile else 0)):
            engine.generate(req, progress=progress_as_a_worker(interval))
        clock.take()
        logger.info("%s / %s: built and warm in %.1f s", name, row.name, time.perf_counter() - t0)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        spent: list[float] = []
        for i in range(args.runs):
            sync(device)
            t = time.perf_counter()
            images = engine.generate(req, progress=progress_as_a_worker(interval))
            sync(device)
            result.grid_s.append(time.perf_counter() - t)
            seconds, result.denoiser_calls = clock.take()
            spent.append(seconds)
            logger.info("%s / %s: grid %d %.3f s (denoiser %.3f s)", name, row.name, i + 1, result.grid_s[-1], seconds)
            if budget.left() < 0:
                break
        result.denoiser_s = statistics.median(spent)
        result.images = images
        if device.type == "cuda":
            result.peak_gib = torch.cuda.max_memory_allocated(device) / 2**30
        if row.name == "baseline" and clock.first is not None:
            # The FLOPs of one call, eager (the same arithmetic every row does), times the calls.
            fargs, fkwargs = clock.first
            clock.close()
            with torch.inference_mode(), flop_counter() as fc:
                denoiser_of(engine.pipe)(*fargs, **fkwargs)
            result.flops_per_grid = fc.get_total_flops() * result.denoiser_calls
        against = results.get(row.against)
        if row.name != "baseline" and against is not None and against.images is not None:
            result.psnr_db, result.psnr_against = psnr(result.images, against.images), against.row
    finally:
        clock.close()
        del engine, clock  # released by the caller (each row compiles afresh: no graph outlives it)
    return result


def first_jobs(sampler: Sampler, name: str, budget: Budget) -> dict[str, Any]:
    """A worker's start: load, warm up (registry.warm_up: every --ar size when compiled), then two jobs."""
    from shared.params import image_size
    from shared.settings import Settings
    from worker.engines import registry
    from worker.engines.base import Request
    from worker.engines.speed import SpeedOptions, is_compiled, warm_sizes

    args, device = sampler.args, sampler.device
    if budget.left() < args.row_min_s * 2:
        return {"model": name, "skipped": f"time budget spent ({args.budget_s:.0f} s)"}
    options = SpeedOptions.for_device(Settings(), device)
    if device.type == "cpu" and not args.compile_on_cpu:
        options = replace(options, compile=False)
    t0 = time.perf_counter()
    engine = sampler.engine(name, options)
    sync(device)
    load_s = time.perf_counter() - t0
    warm_s = registry.warm_up(engine)
    sync(device)
    _size, steps = sampler.size_steps(name)
    jobs = []
    for aspect in ("3:2", "3:2", "1:1"):
        width, height = image_size(aspect, engine.spec.base_size, engine.spec.size_multiple)
        t = time.perf_counter()
        engine.generate(Request.text(PROMPT, list(SEEDS), width, height, steps=steps), progress_as_a_worker(2.0))
        sync(device)
        jobs.append(time.perf_counter() - t)
    out = {
        "model": name, "applied": ", ".join((str(engine.pipe.dtype).removeprefix("torch."), *engine.speedups)),
        "warm_sizes": len(warm_sizes(engine.spec, is_compiled(engine.pipe))), "load_s": load_s, "warm_up_s": warm_s,
        "first_job_s": jobs[0], "second_job_s": jobs[1], "other_size_s": jobs[2],
    }  # fmt: skip
    del engine
    gc.collect()
    return out


def failed(exc: Exception) -> str:
    """A row's note for an exception (an OOM, a compile error…), fit for a table cell."""
    text = " ".join(str(exc).split())
    return f"failed: {type(exc).__name__}: {text[:160]}".replace("|", "/")


def release(device) -> None:
    """Give back what a row held (its engine, its compiled graphs) before the next one."""
    import torch
    import torch._dynamo

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    torch._dynamo.reset()


# -- the tables ---------------------------------------------------------------------------
def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(results: list[Result], peak_flops: float) -> list[list[str]]:
    rows: list[list[str]] = []
    flops = {r.model: r.flops_per_grid for r in results if r.flops_per_grid}
    base = {r.model: r.median_s for r in results if r.row == "baseline"}
    for r in results:
        if r.skipped:
            note = r.skipped if r.skipped.startswith("failed:") else f"skipped: {r.skipped}"
            rows.append([r.model, r.row, note, *["—"] * (len(COLUMNS) - 3)])
            continue
        f = flops.get(r.model)
        fraction = f / r.denoiser_s / peak_flops if f and r.denoiser_s else None
        speedup = base[r.model] / r.median_s if base.get(r.model) and r.median_s else None
        quality = f"{fmt(r.psnr_db, '.1f')} dB vs {r.psnr_against}" if r.psnr_against else "—"
        rows.append(
            [r.model, r.row, r.applied, fmt(r.median_s, ".3f"), fmt(len(SEEDS) / r.median_s, ".2f"),
             fmt(r.peak_gib, ".1f"), fmt(r.denoiser_s, ".3f"), fmt(f / 1e12 if f else None, ".3g"),
             fmt(100 * fraction if fraction else None, ".1f"), fmt(speedup, ".2f"), quality]
        )  # fmt: skip
    return rows


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Machine: {report['machine']}. Peak: {report['peak_tflops']:.3g} TFLOP/s ({report['peak_what']}).",
        f"Grids of {len(SEEDS)} at: " + ", ".join(f"{m} {s}² × {n} steps" for m, (s, n) in report["sizes"].items()),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" if i < 3 else "---:" for i in range(len(COLUMNS))) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in report["table"]]
    if report["first_jobs"]:
        lines += [
            "",
            "| model | applied | load s | warm-up s (sizes) | first job (3:2) s | second job (3:2) s | then 1:1 s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for j in report["first_jobs"]:
            if "skipped" in j:
                note = j["skipped"] if j["skipped"].startswith("failed:") else f"skipped: {j['skipped']}"
                lines.append(f"| {j['model']} | {note} | — | — | — | — | — |")
            else:
                lines.append(
                    f"| {j['model']} | {j['applied']} | {j['load_s']:.1f} | {j['warm_up_s']:.1f} ({j['warm_sizes']}) "
                    f"| {j['first_job_s']:.3f} | {j['second_job_s']:.3f} | {j['other_size_s']:.3f} |"
                )
    return "\n".join(lines)


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    import torch

    device = torch.device(args.device)
    budget = Budget(args.budget_s)
    info = machine(device)
    peak, peak_what = measure_peak(device)
    logger.info("peak %.1f TFLOP/s (%s); %s", peak / 1e12, peak_what, info)
    sampler = Sampler(args, device, workdir)
    wanted = set(args.rows.split(",")) if args.rows else None
    results: list[Result] = []
    first: list[dict[str, Any]] = []
    sizes = {name: sampler.size_steps(name) for name in args.models}

    def save() -> None:  # after every row: a command cut off by its limit keeps what it measured
        if args.json:
            args.json.write_text(json.dumps(report(), indent=2, default=str) + "\n")

    def report() -> dict[str, Any]:
        return {
            "machine": info, "peak_tflops": peak / 1e12, "peak_what": peak_what, "sizes": sizes,
            "table": table(results, peak), "columns": list(COLUMNS), "first_jobs": first,
            "results": [{k: v for k, v in asdict(r).items() if k != "images"} for r in results],
        }  # fmt: skip

    # In order of what matters most, so a budget cut short still answers the questions:
    # the baseline and the worker's defaults of every model, a worker's first jobs on the first
    # model, then each switch alone and the optional ones, then the other models' first jobs.
    headline = {"baseline", "daydream"}
    plan: list[tuple[str, Row | None]] = [(m, r) for m in args.models for r in ROWS if r.name in headline]
    first_models = [] if args.no_first_job else args.models
    plan += [(m, None) for m in first_models[:1]]
    plan += [(m, r) for m in args.models for r in ROWS if r.name not in headline]
    plan += [(m, None) for m in first_models[1:]]
    done: dict[str, dict[str, Result]] = {m: {} for m in args.models}
    model_order = {m: i for i, m in enumerate(args.models)}
    row_order = {r.name: i for i, r in enumerate(ROWS)}
    for name, row in plan:
        if row is None:
            try:
                first.append(first_jobs(sampler, name, budget))
            except Exception as exc:  # one failure must not cost the rest of a GPU's few minutes
                logger.exception("%s / first jobs failed", name)
                first.append({"model": name, "skipped": failed(exc)})
            release(device)  # after the except block: the traceback no longer holds the engine
            first.sort(key=lambda j: model_order[j["model"]])
        elif wanted is None or row.name in wanted or row.name == "baseline":
            try:
                result = run_row(sampler, name, row, budget, done[name])
            except Exception as exc:
                logger.exception("%s / %s failed", name, row.name)
                result = Result(name, row.name, skipped=failed(exc))
            release(device)
            if row.name not in headline:
                result.images = None  # only the baseline's and the defaults' are compared against
            done[name][row.name] = result
            results.append(result)
            results.sort(key=lambda r: (model_order[r.model], row_order[r.row]))
        save()
    return report()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cuda, cuda:N or cpu (default: cuda, cpu with --tiny)")
    parser.add_argument("--tiny", action="store_true", help="tiny random pipelines on the CPU (the suite's smoke)")
    parser.add_argument(
        "--shallow", action="store_true", help="the full-size widths with one layer each: checks the wiring on a CPU"
    )
    parser.add_argument("--models", default="sd15,sdxl,flux", help="comma-separated: sd15, sdxl, flux")
    parser.add_argument("--rows", default=None, help="comma-separated row names (the baseline always runs)")
    parser.add_argument("--size", type=int, default=None, help="tile side (default: the model's)")
    parser.add_argument("--steps", type=int, default=None, help="steps (default: 25, 30, 4)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget-s", type=float, default=540.0, help="rows after this many seconds are skipped")
    parser.add_argument("--row-min-s", type=float, default=20.0, help="start no row with less time than this left")
    parser.add_argument("--compile-on-cpu", action="store_true", help="compile on a CPU too (slow)")
    parser.add_argument("--no-first-job", action="store_true", help="skip the worker start / first job timing")
    parser.add_argument("--flops-only", action="store_true", help="count FLOPs per step at full size and stop")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in TINY]
    if unknown:
        parser.error(f"--models takes sd15, sdxl, flux; not {', '.join(unknown)}")
    known_rows = {r.name for r in ROWS}
    if args.rows and not set(args.rows.split(",")) <= known_rows:
        parser.error(f"--rows takes {', '.join(sorted(known_rows))}")
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    args.device = args.device or ("cpu" if args.tiny or args.shallow or args.flops_only else "cuda")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.flops_only:
        counted = flops_only(args.models)
        print("\n| model | size | images | denoiser batch | TFLOP per step | steps | TFLOP per grid |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for c in counted:
            print(
                f"| {c['model']} | {c['size']}² | {c['images']} | {c['batch']} | {c['tflop_per_step']:.2f} "
                f"| {c['steps']} | {c['tflop_per_step'] * c['steps']:.1f} |"
            )
        return {"flops": counted}
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args, Path(tmp))
    print()
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
