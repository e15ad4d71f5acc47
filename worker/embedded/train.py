"""Train the embedded model from scratch, resumably, on a CPU or a GPU.

    python -m worker.embedded.train --out worker/models/embedded --steps 12000

Every `--ckpt-every` steps it writes a full checkpoint (weights, EMA,
optimiser, step) to `--ckpt` and exports the EMA weights to `--out` in the
same folder layout the engine loads. Run it again with the same arguments
and it resumes where it stopped; the data for step *n* depends only on the
seed and *n*, so a resumed run sees what an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch

from worker.embedded import scenes
from worker.embedded.denoiser import (
    ARCHITECTURE_FILE,
    IMAGE_SIZE,
    NOISE_SHIFT,
    NORMS,
    build_unet,
    fold,
    load_unet,
    norm_of,
    shifted_timesteps,
    train_scheduler,
    unfold,
    use_pixel_norm,
    widen_for_coords,
    with_coords,
)
from worker.embedded.objective import LR_DECAYS, learning_rate, loss_weight, object_mask, pixel_weights
from worker.embedded.textenc import TextEncoder

logger = logging.getLogger(__name__)

DEFAULT_CKPT = Path.home() / ".cache" / "daydream" / "train-embedded"
POOL_SIZE = 12288  # captions encoded once up front; MiniLM is the slow part
CAPTION_DROP = 0.1  # for classifier-free guidance
EMA_DECAY = 0.999
# The noise shift moves 84% of timesteps below plain SNR 1, where outlines
# are not yet visible; shapes are settled around SNR 1-10. Half of each batch
# draws from the plain schedule again, so both get trained.
PLAIN_FRACTION = 0.5
# Loss weight of object pixels relative to background (see objective.pixel_weights).
OBJECT_WEIGHT = 4.0


def build_pool(encoder: TextEncoder, seed: int, size: int) -> dict:
    rng = random.Random(seed)
    pool_scenes = [scenes.random_scene(rng) for _ in range(size)]
    captions = [scenes.caption(s, rng) for s in pool_scenes]
    tokens, masks, pooled = [], [], []
    for i in range(0, size, 256):
        emb = encoder.encode(captions[i : i + 256])
        tokens.append(emb.tokens.half())
        masks.append(emb.mask)
        pooled.append(emb.pooled)
        if i % 2048 == 0:
            logger.info("encoded %d/%d captions", i, size)
    empty = encoder.encode([""])
    return {
        "scenes": pool_scenes,
        "captions": captions,
        "tokens": torch.cat(tokens),
        "mask": torch.cat(masks),
        "pooled": torch.cat(pooled),
        "empty_tokens": empty.tokens.half(),
        "empty_mask": empty.mask,
        "empty_pooled": empty.pooled,
    }


def make_batch(pool: dict, step: int, seed: int, batch: int) -> tuple[torch.Tensor, ...]:
    rng = random.Random(seed * 1_000_003 + step)
    idx = [rng.randrange(len(pool["scenes"])) for _ in range(batch)]
    imgs, masks = [], []
    for i in idx:
        s = pool["scenes"][i]
        # New placement jitter each time: the caption does not fix it.
        s = scenes.Scene(s.background, s.objects, (rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04)))
        img = np.asarray(scenes.render(s, IMAGE_SIZE), dtype=np.float32)
        imgs.append(img)
        masks.append(object_mask(img, s.background))
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2) / 127.5 - 1.0
    obj = torch.from_numpy(np.stack(masks))[:, None]
    tokens = pool["tokens"][idx].float()
    mask = pool["mask"][idx].clone()
    pooled = pool["pooled"][idx].clone()
    drop = torch.tensor([rng.random() < CAPTION_DROP for _ in idx])
    tokens[drop] = pool["empty_tokens"].float()
    mask[drop] = pool["empty_mask"]
    pooled[drop] = pool["empty_pooled"]
    return x, tokens, mask, pooled, obj


def export(unet: torch.nn.Module, out: Path, meta: dict) -> None:
    from worker.embedded.denoiser import SCHEDULER_CONFIG

    out.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(unet).half()
    half.save_pretrained(out / "unet", safe_serialization=True)
    # A warm-started model remembers the folder it was loaded from (often a
    # temporary one); the shipped config should not.
    config = out / "unet" / "config.json"
    fields = json.loads(config.read_text())
    if fields.pop("_name_or_path", None) is not None:
        config.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    (out / "scheduler").mkdir(exist_ok=True)
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER_CONFIG, indent=2) + "\n")
    (out / ARCHITECTURE_FILE).write_text(json.dumps({"norm": norm_of(unet)}, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    ckpt_dir: Path = args.ckpt
    ckpt_dir.mkdir(parents=True, exist_ok=True)

    # 1. Caption pool: encoded once, cached next to the checkpoint.
    pool_file = ckpt_dir / f"pool-{args.seed}-{POOL_SIZE}-v{scenes.CAPTION_VERSION}.pt"
    if pool_file.exists():
        pool = torch.load(pool_file, weights_only=False)
    else:
        t0 = time.time()
        pool = build_pool(TextEncoder(), args.seed, POOL_SIZE)
        torch.save(pool, pool_file)
        logger.info("caption pool encoded in %.0f s", time.time() - t0)

    # 2. Model, EMA, optimiser; resume if a checkpoint is there.
    state_file = ckpt_dir / "state.pt"
    state = torch.load(state_file, weights_only=False, map_location=device) if state_file.exists() else None
    if args.init is not None and state is None:
        # Warm start from an exported model folder (fresh optimiser); a
        # GroupNorm model asked to train with --norm pixel keeps its weights
        # and gets the new norm.
        unet = widen_for_coords(load_unet(args.init))
        if args.norm == "pixel" and norm_of(unet) == "group":
            use_pixel_norm(unet)
        elif args.norm != norm_of(unet):
            # PixelNorm weights have no GroupNorm equivalent to convert to.
            logger.warning("--norm %s ignored: %s was trained with %s norm", args.norm, args.init, norm_of(unet))
        unet = unet.to(device).train()
        logger.info("warm start from %s (%s norm)", args.init, norm_of(unet))
    else:
        # A resumed run keeps the norm its checkpoint was trained with.
        norm = state.get("norm", "group") if state is not None else args.norm
        unet = build_unet(norm=norm).to(device).train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-2)
    step, elapsed = 0, 0.0
    if args.init is not None:
        prior = json.loads((args.init / "training.json").read_text())
        step, elapsed = prior["steps"], float(prior["train_seconds"])
    # The step this run began at: the lr decays from there to --steps.
    start = step
    if state is not None:
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = state["step"], state.get("elapsed", 0.0)
        start = state.get("start", step)
        logger.info("resumed at step %d (%.0f s trained so far)", step, elapsed)
    sched = train_scheduler()
    alphas = sched.alphas_cumprod.to(device)
    snr = alphas / (1 - alphas)
    # Timesteps drawn uniformly in the shifted schedule, as plain-schedule timesteps.
    shifted = torch.from_numpy(shifted_timesteps(args.noise_shift)).round().long()

    stop = {"now": False}

    def _stop(signum: int, _frame: object) -> None:
        logger.info("signal %d: checkpointing and stopping", signum)
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    def checkpoint() -> None:
        tmp = state_file.with_suffix(".tmp")
        torch.save(
            {
                "unet": unet.state_dict(),
                "ema": ema.state_dict(),
                "opt": opt.state_dict(),
                "step": step,
                "elapsed": elapsed,
                "start": start,
                "norm": norm_of(unet),
            },
            tmp,
        )
        tmp.replace(state_file)
        meta = {
            "steps": step,
            "batch": args.batch,
            "lr": args.lr,
            "lr_decay": args.lr_decay,
            "lr_floor": args.lr_floor,
            "run_start_step": start,
            "seed": args.seed,
            "train_seconds": round(elapsed),
            "device": str(device),
            "torch_threads": torch.get_num_threads(),
            "weighting": args.weighting,
            "noise_shift": args.noise_shift,
            "plain_fraction": args.plain_fraction,
            "object_weight": args.object_weight,
            "norm": norm_of(unet),
            "recent_loss": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 5),
        }
        export(ema, args.out, meta)
        logger.info("checkpoint at step %d, exported EMA to %s", step, args.out)

    # 3. The loop: v-prediction with min-SNR weighting.
    losses: list[float] = []
    t_last = time.time()
    first_step = step
    while step < args.steps and not stop["now"]:
        x, tokens, mask, pooled, obj = make_batch(pool, step, args.seed, args.batch)
        x, tokens, mask, pooled = x.to(device), tokens.to(device), mask.to(device), pooled.to(device)
        x0 = fold(x)
        g = torch.Generator(device="cpu").manual_seed(args.seed + step)
        noise = torch.randn(x0.shape, generator=g).to(device)
        draw = torch.randint(0, sched.config.num_train_timesteps, (x0.shape[0],), generator=g)
        plain = torch.rand(x0.shape[0], generator=g) < args.plain_fraction
        t = torch.where(plain, draw, shifted[draw]).to(device)
        xt = sched.add_noise(x0, noise, t)
        target = sched.get_velocity(x0, noise, t)
        lr = learning_rate(
            step,
            args.lr,
            warm_from=first_step,
            warmup=args.warmup,
            start=start,
            total=args.steps,
            decay=args.lr_decay,
            floor=args.lr_floor,
        )
        for group in opt.param_groups:
            group["lr"] = lr
        pred = unet(
            with_coords(xt), t, encoder_hidden_states=tokens, encoder_attention_mask=mask, class_labels=pooled
        ).sample
        weight = loss_weight(snr[t], args.weighting)
        # Per-pixel error in image space, so the object mask lines up.
        err = unfold(pred - target).pow(2).mean(dim=1, keepdim=True)
        if args.object_weight != 1.0:
            err = err * pixel_weights(obj, args.object_weight).to(device)
        loss = (weight * err.mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        losses.append(loss.item())
        step += 1
        now = time.time()
        elapsed += now - t_last
        t_last = now
        if step % args.log_every == 0:
            recent = losses[-args.log_every :]
            print(f"step {step} loss {sum(recent) / len(recent):.4f} lr {lr:.2e} {elapsed:.0f}s", flush=True)
        if step % args.ckpt_every == 0:
            checkpoint()
    if step % args.ckpt_every:
        checkpoint()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Train Daydream's embedded text-to-image model.")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "embedded")
    p.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT, help="checkpoint folder (resumes from it)")
    p.add_argument("--init", type=Path, default=None, help="model folder to warm-start from when no checkpoint exists")
    # 12,000 steps met every quality target from scratch in 1 h 57 min on 2
    # CPU cores (model card, session 6).
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument(
        "--lr-decay",
        choices=LR_DECAYS,
        default="cosine",
        help="cosine: from --lr down to --lr-floor times it at --steps; none: constant",
    )
    p.add_argument("--lr-floor", type=float, default=0.1, help="final lr as a share of --lr (cosine decay)")
    p.add_argument("--noise-shift", type=float, default=NOISE_SHIFT, help="1 = the plain cosine schedule")
    p.add_argument(
        "--plain-fraction",
        type=float,
        default=PLAIN_FRACTION,
        help="share of each batch whose timesteps come from the plain schedule instead of the shifted one",
    )
    p.add_argument(
        "--object-weight",
        type=float,
        default=OBJECT_WEIGHT,
        help="loss weight of object pixels (and a 2-px ring) relative to background pixels; 1 = plain mean",
    )
    p.add_argument("--weighting", choices=("min-snr", "min-snr+1"), default="min-snr+1")
    p.add_argument(
        "--norm",
        choices=NORMS,
        default="pixel",
        help="pixel: normalise each cell over its channels (no speckle blob); group: diffusers' GroupNorm",
    )
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=250)
    args = p.parse_args(argv)
    if args.init is not None and not (
        (args.init / "unet" / "config.json").is_file() and (args.init / "training.json").is_file()
    ):
        p.error(f"--init {args.init}: not an embedded model folder (it needs unet/ and training.json)")
    if not 0.0 <= args.plain_fraction <= 1.0:
        p.error(f"--plain-fraction {args.plain_fraction}: must be between 0 and 1 (a share of each batch)")
    if not 0.0 <= args.lr_floor <= 1.0:
        p.error(f"--lr-floor {args.lr_floor}: must be between 0 and 1 (a share of --lr)")
    if args.object_weight <= 0:
        p.error(f"--object-weight {args.object_weight}: must be above 0 (1 weighs every pixel the same)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    train(args)


if __name__ == "__main__":
    main()
