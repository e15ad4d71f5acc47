"""Issue 3's GPU smoke run: the full-size Stable Diffusion 1.5 architecture,
with random weights (no download), through Daydream's diffusers engine.

It builds the pipeline from SD 1.5's published configs (UNet 860M, VAE 84M,
CLIP text encoder 123M, the CLIP ViT-L/14 safety checker), saves it as a
model folder in fp16 safetensors, then loads that folder the way a worker does
(`MODEL=<folder>`: AutoPipeline, img2img through `from_pipe`) and times one
2×2 grid (txt2img, 4 images, one generator each), one variation (img2img at
the worker's default strength) and one upscale (×2, img2img at 2× size). The
images are noise (random weights); the point is that the full-size code path
runs and what it costs. Not a test: run it by hand and paste the table into
RESULTS.md.

    python benchmarks/sd_fullsize.py --device cuda                  # on a GPU: 512², 25 steps
    python benchmarks/sd_fullsize.py --device cpu --size 256 --steps 2 --runs 1 --warmup 0
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.machine import cpu_name  # noqa: E402

logger = logging.getLogger(__name__)

PROMPT = "a lighthouse at dusk"
SEEDS = [1, 2, 3, 4]
CLIP_VOCAB = 49408  # SD 1.5's text encoder; our written tokenizer uses a few of its ids

# SD 1.5's configs (stable-diffusion-v1-5/stable-diffusion-v1-5: unet/, vae/, text_encoder/,
# safety_checker/ config.json), written out so nothing is fetched.
UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}
VAE = {
    "sample_size": 512,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "norm_num_groups": 32,
}
TEXT = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "vocab_size": CLIP_VOCAB,
}
SAFETY_VISION = {  # CLIP ViT-L/14
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_attention_heads": 16,
    "num_hidden_layers": 24,
    "image_size": 224,
    "patch_size": 14,
}


def build_sd15(folder: Path, *, safety_checker: bool = True) -> Path:
    """Random weights in SD 1.5's shapes, saved as a diffusers model folder."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tests.support.tiny_sd import write_tokenizer

    torch.manual_seed(0)
    write_tokenizer(folder / "_tok")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "_tok")
    text = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=1, **TEXT
    )
    checker = features = None
    if safety_checker:
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPConfig

        checker = StableDiffusionSafetyChecker(
            CLIPConfig(text_config=TEXT, vision_config=SAFETY_VISION, projection_dim=768)
        )
        features = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel(**UNET),
        vae=AutoencoderKL(**VAE),
        text_encoder=CLIPTextModel(text),
        tokenizer=tokenizer,
        # SD 1.5's own scheduler config
        scheduler=PNDMScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
        ),
        safety_checker=checker,
        feature_extractor=features,
        requires_safety_checker=checker is not None,
    )
    out = folder / "sd15-random"
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    return out


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure(args: argparse.Namespace, workdir: Path) -> dict:
    import torch

    from shared.grid import compose_grid, encode_for_upload
    from shared.settings import Settings
    from worker.engines.base import Request
    from worker.engines.diffusers_engine import DiffusersEngine

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    t0 = time.perf_counter()
    model = build_sd15(workdir, safety_checker=not args.no_safety_checker)
    build_s = time.perf_counter() - t0
    logger.info("built and saved %s (%.0f MB) in %.1f s", model, folder_mb(model), build_s)

    t0 = time.perf_counter()
    engine = DiffusersEngine(str(model), device=args.device)
    sync()
    load_s = time.perf_counter() - t0
    size = args.size or engine.spec.base_size
    logger.info("loaded in %.1f s; %s", load_s, type(engine.pipe).__name__)
    req = Request.text(PROMPT, SEEDS, size, size, steps=args.steps)
    strengths = Settings()  # the buttons' defaults: V1-V4 and U1-U4

    previews: list[int] = []

    last = {"at": 0.0}

    def progress(_fraction: float, preview) -> None:
        # As in a worker: a preview is built when a progress edit is due (every 2 s).
        if preview is not None and time.monotonic() - last["at"] >= strengths.progress_interval_s:
            last["at"] = time.monotonic()
            if preview() is not None:
                previews[-1] += 1

    def grid_once() -> tuple[float, list]:
        previews.append(0)
        t = time.perf_counter()
        images = engine.generate(req, progress=progress)
        sync()
        return time.perf_counter() - t, images

    for _ in range(args.warmup):
        grid_once()
    grid_s: list[float] = []
    for i in range(args.runs):
        seconds, images = grid_once()
        grid_s.append(seconds)
        logger.info("grid %d: %.2f s", i + 1, seconds)

    t = time.perf_counter()
    variations = engine.generate(replace(req, init_images=(images[0],), strength=strengths.vary_strong))
    sync()
    vary_s = time.perf_counter() - t
    t = time.perf_counter()
    two = dict(width=2 * images[0].width, height=2 * images[0].height, upscale=2)
    [upscaled] = engine.generate(
        replace(req, seeds=tuple(SEEDS[:1]), init_images=(images[0],), strength=strengths.upscale_subtle, **two)
    )
    sync()
    upscale_s = time.perf_counter() - t
    logger.info("variations %.2f s, upscale %.2f s", vary_s, upscale_s)

    grid = compose_grid(images)
    data, name = encode_for_upload(grid, 10 * 2**20)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / name).write_bytes(data)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({cpu_name()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "dtype": str(engine.pipe.unet.dtype),
        "safety_checker": type(getattr(engine.pipe, "safety_checker", None)).__name__,
        "size": size,
        "steps": args.steps or engine.default_steps,
        "model_mb": round(folder_mb(model)),
        "load_s": round(load_s, 2),
        "grid_runs_s": [round(s, 3) for s in grid_s],
        "grid_median_s": statistics.median(grid_s),
        "grid_p90_s": percentile(grid_s, 90),
        "previews_per_grid": previews[-1],
        "variations_s": round(vary_s, 3),
        "variation_sizes": sorted({im.size for im in variations}),
        "upscale_s": round(upscale_s, 3),
        "upscale_size": upscaled.size,
        "grid_size": grid.size,
        "upload": f"{name}, {len(data) / 2**20:.2f} MiB",
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
    }


def markdown(r: dict) -> str:
    peak = f", peak GPU memory {r['peak_gpu_gib']} GiB" if r["peak_gpu_gib"] is not None else ""
    return "\n".join(
        [
            f"SD 1.5 architecture, random weights ({r['model_mb']} MB fp16 folder, safety checker: "
            f"{r['safety_checker']}), {r['device']}, {r['dtype']}, torch {r['torch']}, "
            f"{r['threads']} threads of {r['cpu_count']} cores; load {r['load_s']:.1f} s{peak}.",
            "",
            "| what | size | steps | runs | median | p90 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| 2×2 grid (txt2img, batch 4) | {r['size']}² | {r['steps']} | {len(r['grid_runs_s'])} "
            f"| {r['grid_median_s']:.2f} s | {r['grid_p90_s']:.2f} s |",
            f"| V: 4 variations (img2img 0.75) | {r['size']}² | {r['steps']} | 1 | {r['variations_s']:.2f} s | |",
            f"| U: upscale ×2 (img2img 0.25) | {r['upscale_size'][0]}² | {r['steps']} | 1 | {r['upscale_s']:.2f} s | |",
            "",
            f"Grid {r['grid_size'][0]}×{r['grid_size'][1]} encoded as {r['upload']}; "
            f"{r['previews_per_grid']} progress previews built during the last grid.",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--size", type=int, default=None, help="tile side (default: the model's, 512)")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the engine's, 25)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-safety-checker", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the model folder is written (default: temp)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the grid image")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    if args.size is not None and args.size % 64:
        parser.error(f"--size must be a multiple of 64, got {args.size}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        result = measure(args, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(markdown(result))


if __name__ == "__main__":
    main()
