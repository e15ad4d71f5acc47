"""`daydream train-embedded` hands every argument after it to the trainer's
own parser (argparse would otherwise take "--steps"-style options for the
top-level parser's and reject them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daydream import cli


def test_trainer_options_reach_the_trainer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-model-here"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-embedded", "--init", str(missing), "--steps", "1", "--ckpt", str(tmp_path / "ck")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--init {missing}: not an embedded model folder" in err, err
    assert not (tmp_path / "ck").exists()  # refused before any work


def test_a_bad_trainer_option_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-embedded", "--weighting", "bogus"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--weighting" in err and "min-snr+1" in err, err


def test_other_commands_still_reject_unknown_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["imagine", "train-embedded", "--bogus"])
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "hint"),
    [
        ("--plain-fraction", "1.5", "must be between 0 and 1"),
        ("--object-weight", "-2", "must be above 0"),
        ("--lr-floor", "2", "must be between 0 and 1"),
    ],
)
def test_out_of_range_loss_options_are_refused(
    option: str, value: str, hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train-embedded", option, value, "--ckpt", str(tmp_path / "ck")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{option} {float(value)}: {hint}" in err, err
    assert not (tmp_path / "ck").exists()  # refused before any work
