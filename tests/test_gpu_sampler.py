"""The GPU speed harness (benchmarks/gpu_sampler.py) in its `--tiny` CPU mode:
the path a lent GPU runs, at a tiny size, so a broken harness is found here
and not in the GPU's few minutes. It checks the table's shape and that the
FLOP counting gives positive figures; the speeds themselves are benchmark
output, not test results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_sampler


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sampler") / "report.json"
    argv = ["--tiny", "--models", "sd15", "--rows", "latent_previews,daydream,cuda_graphs", "--runs", "1"]
    gpu_sampler.main([*argv, "--warmup", "0", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved["table"], "the JSON written after each row holds the table"
    return saved


def test_the_table_has_its_columns_and_a_row_each(report):
    assert report["columns"] == list(gpu_sampler.COLUMNS)
    rows = {row[1]: dict(zip(report["columns"], row, strict=True)) for row in report["table"]}
    assert list(rows) == ["baseline", "daydream", "latent_previews", "cuda_graphs"]  # in ROWS' order
    for name in ("baseline", "daydream", "latent_previews"):
        row = rows[name]
        assert float(row["s/grid"]) > 0 and float(row["images/s"]) > 0 and float(row["denoiser s"]) > 0
        assert row["peak GiB"] == "—"  # GPU memory: no GPU here
    assert rows["baseline"]["× baseline"] == "1.00"
    assert rows["baseline"]["applied"] == "float32"
    # The worker's defaults, compile left out on a CPU (it would outlast the run), compared to the baseline.
    assert rows["daydream"]["applied"].startswith("bfloat16, fuse_qkv, channels_last")
    assert "compile left out" in rows["daydream"]["applied"]
    assert rows["daydream"]["PSNR vs"].endswith("dB vs baseline")
    assert rows["cuda_graphs"]["applied"] == "skipped: needs CUDA"


def test_flop_counting_gives_positive_figures(report):
    rows = {row[1]: dict(zip(report["columns"], row, strict=True)) for row in report["table"]}
    for name in ("baseline", "daydream"):
        assert float(rows[name]["TFLOP/grid"]) > 0 and float(rows[name]["% of peak"]) > 0
    assert report["peak_tflops"] > 0 and "matmul" in report["peak_what"]
    [baseline] = [r for r in report["results"] if r["row"] == "baseline"]
    # 2 DDIM steps, both guidance halves in one batch: one denoiser call per step.
    assert baseline["denoiser_calls"] == 2 and baseline["flops_per_grid"] > 0


def test_the_cpu_attention_kernel_is_counted():
    # flop_counter's table has CUDA's fused attention kernels, not the CPU's: the harness adds it.
    q = k = v = torch.randn(2, 4, 64, 8)
    with gpu_sampler.flop_counter() as counter:
        torch.nn.functional.scaled_dot_product_attention(q, k, v)
    batch, heads, tokens, dim = q.shape
    assert counter.get_total_flops() == 2 * 2 * batch * heads * tokens * tokens * dim  # QKᵀ and PV


def test_first_job_after_the_worker_warms_up(report):
    [first] = report["first_jobs"]
    assert first["model"] == "sd15" and first["warm_sizes"] == 1  # not compiled: the base size only
    assert first["warm_up_s"] > 0 and first["first_job_s"] > 0 and first["second_job_s"] > 0


def test_bad_arguments_say_what_they_take(capsys):
    with pytest.raises(SystemExit):
        gpu_sampler.main(["--tiny", "--models", "sd3"])
    assert "--models takes sd15, sdxl, flux" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_sampler.main(["--tiny", "--rows", "turbo"])
    assert "--rows takes" in capsys.readouterr().err


def test_the_device_script_runs_the_harness_and_names_the_machine():
    script = (Path(gpu_sampler.ROOT) / "benchmarks" / "device_gpu_sampler.sh").read_text()
    assert "benchmarks/gpu_sampler.py" in script and "nvidia-smi" in script and "--budget-s" in script


def test_a_failing_row_is_noted_and_the_run_goes_on(monkeypatch, tmp_path):
    made = gpu_sampler.Sampler.engine

    def engine(self, name, options):
        if options.fuse_qkv:
            raise RuntimeError("CUDA out of memory | tried to allocate")
        return made(self, name, options)

    monkeypatch.setattr(gpu_sampler.Sampler, "engine", engine)
    argv = ["--tiny", "--models", "sd15", "--rows", "fuse_qkv,latent_previews", "--runs", "1", "--warmup", "0"]
    report = gpu_sampler.main([*argv, "--no-first-job", "--json", str(tmp_path / "r.json")])
    rows = {row[1]: row for row in report["table"]}
    assert rows["fuse_qkv"][2] == "failed: RuntimeError: CUDA out of memory / tried to allocate"
    assert float(rows["latent_previews"][3]) > 0  # the next row ran
