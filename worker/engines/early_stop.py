"""--stop on a diffusers pipeline: finish at a fraction of the steps with the
denoised estimate (the x0 prediction), not the noisy latents of that step.

For the call, the scheduler's `step` is wrapped: at the stop step it returns the
estimate of the clean latents as the step's result and sets `pipe._interrupt`
(diffusers' documented way to skip the remaining steps); the pipeline then decodes
it as if sampling had ended. The estimate is the scheduler's own
`pred_original_sample` where it gives one, else the formula for its kind; a
scheduler of another kind is not guessed at: the model refuses --stop at submit."""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from diffusers.schedulers.scheduling_utils import SchedulerOutput

# Variance-preserving schedulers without it: x_t = √ᾱ·x0 + √(1-ᾱ)·ε at the model's timestep.
ALPHAS = frozenset({
    "PNDMScheduler", "DPMSolverMultistepScheduler", "DPMSolverSinglestepScheduler", "UniPCMultistepScheduler",
    "DEISMultistepScheduler",
})  # fmt: skip
# Flow matching: x_t = (1-σ)·x0 + σ·noise, and the model predicts v = noise - x0.
FLOWS = frozenset({"FlowMatchEulerDiscreteScheduler"})
PREDICTIONS = frozenset({"epsilon", "v_prediction", "sample"})


def can_stop(scheduler: Any) -> bool:
    """Whether --stop can take the denoised estimate from `scheduler`'s steps."""
    kind = type(scheduler).__name__
    config = scheduler.config
    if gives_x0(scheduler) or kind in FLOWS:
        return True
    # Flow sigmas in a DPM-Solver are not the ᾱ schedule the formula reads.
    return (
        kind in ALPHAS and config.get("prediction_type", "epsilon") in PREDICTIONS and not config.get("use_flow_sigmas")
    )


def gives_x0(scheduler: Any) -> bool:
    """Whether `scheduler`'s step output carries the denoised estimate (DDIM, DDPM, Euler, LMS, Heun …)."""
    annotation = inspect.signature(type(scheduler).step).return_annotation
    for kind in typing.get_args(annotation) or (annotation,):
        if dataclasses.is_dataclass(kind) and "pred_original_sample" in {f.name for f in dataclasses.fields(kind)}:
            return True
    return False


def stop_step(total: int, stop: float) -> int:
    """The step (1-based) at which `stop` of `total` steps is reached: at least one."""
    return max(1, math.ceil(total * stop))


def denoised(scheduler: Any, out: Any, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor) -> torch.Tensor:
    """The x0 estimate of the step just taken, from (model_output, timestep, sample)."""
    x0 = getattr(out, "pred_original_sample", None)
    if x0 is not None:
        return x0
    kind = type(scheduler).__name__
    v, x = model_output.float(), sample.float()
    if kind in FLOWS:
        sigma = scheduler.sigmas[scheduler.step_index - 1].to(x.device)  # the step index has moved on
        return (x - sigma * v).to(sample.dtype)
    alpha_bar = scheduler.alphas_cumprod.to(x.device)[int(timestep)]
    a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    prediction = scheduler.config.get("prediction_type", "epsilon")
    if prediction == "epsilon":
        x0 = (x - s * v) / a
    elif prediction == "v_prediction":
        x0 = a * x - s * v
    else:
        x0 = v
    return x0.to(sample.dtype)


@contextmanager
def stopping(pipe: Any, stop: float | None) -> Iterator[None]:
    """For the call of `pipe` inside: at `stop` (a fraction) of its steps, the denoised estimate, and no more steps."""
    if stop is None or stop >= 1.0:
        yield
        return
    scheduler = pipe.scheduler
    if not can_stop(scheduler):
        raise ValueError(f"--stop cannot take the denoised estimate from a {type(scheduler).__name__}")
    original = scheduler.step
    signature = inspect.signature(original)
    taken = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal taken
        taken += 1
        # The pipeline's own count (PNDM runs one step more; image-to-image a strength-dependent share).
        if taken != stop_step(int(getattr(pipe, "num_timesteps", 0) or len(scheduler.timesteps)), stop):
            return original(*args, **kwargs)
        wants_dict = kwargs.pop("return_dict", True)  # the pipelines pass it by name
        out = original(*args, **kwargs, return_dict=True)
        a = signature.bind_partial(*args, **kwargs).arguments
        x0 = denoised(scheduler, out, a["model_output"], a["timestep"], a["sample"]).to(out.prev_sample.dtype)
        pipe._interrupt = True  # the remaining steps are skipped; the pipeline decodes x0
        return SchedulerOutput(prev_sample=x0) if wants_dict else (x0,)

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step
