"""Launcher configs in recipes/accelerate/ go through Accelerate's own loader; topology switches work."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adapters.errors import AdaptersUserError
from adapters.recipe import load_recipe
from adapters.training import check_topology
from tests.test_training import _adapter_weights, _train

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "recipes" / "accelerate").glob("*.yaml"))


def test_every_documented_config_is_shipped() -> None:
    names = {path.stem for path in CONFIGS}
    assert {"cpu-2proc", "single-gpu", "multi-gpu", "fsdp", "deepspeed-zero2"} <= names
    docs = (CONFIGS[0].parents[2] / "docs" / "distributed.md").read_text()
    for path in CONFIGS:
        text = path.read_text()
        assert text.startswith("# When:"), path.name  # says when to use it
        assert f"--config_file recipes/accelerate/{path.name}" in text, path.name
        assert f"recipes/accelerate/{path.name}" in docs, path.name


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_config_passes_accelerates_launcher(path: Path) -> None:
    """The same parsing and environment preparation that `accelerate launch` does, minus the launch."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import launch

    config = load_config_from_file(str(path))  # unknown keys are an error here
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "adapters", "train", "r"])
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == config.num_processes
    if args.use_deepspeed:
        assert defaults.deepspeed_config["gradient_accumulation_steps"] == 1  # = the recipes' default
        assert defaults.deepspeed_config["zero_stage"] == 2  # ZeRO-2 keeps parameters whole: full adapter
        return
    env = (
        launch.prepare_multi_gpu_env(args)
        if args.multi_gpu or args.use_fsdp
        else launch.prepare_simple_launcher_cmd_env(args)[1]
    )
    if args.use_fsdp:  # what the launcher hands the processes (the plugin itself needs a GPU to build)
        assert env["FSDP_VERSION"] == "1" and env["FSDP_USE_ORIG_PARAMS"] == "true"
        assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
        assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    if path.stem == "cpu-2proc":
        # --cpu would collapse to one process; MULTI_GPU keeps two (the library then forces the CPU).
        assert args.multi_gpu and args.num_processes == 2 and args.use_cpu


def test_fsdp_refuses_8bit_and_accepts_4bit() -> None:
    from accelerate.utils import DistributedType

    with pytest.raises(AdaptersUserError, match="FSDP cannot shard bitsandbytes 8-bit"):
        check_topology(load_recipe(model={"quantization": "8bit"}), DistributedType.FSDP)
    check_topology(load_recipe(model={"quantization": "4bit"}), DistributedType.FSDP)
    check_topology(load_recipe(model={"quantization": "8bit"}), DistributedType.MULTI_GPU)


def test_gradient_checkpointing_gives_the_same_step(recipe_for) -> None:
    """Recomputed activations must give the same gradients (non-reentrant: frozen embeddings still work)."""
    common = {"max_steps": 2, "learning_rate": 1e-2, "eval_every": 1, "per_device_batch_size": 8}
    method = {"lora_dropout": 0.0}
    plain = _train(recipe_for(training=common, method=method))
    checkpointed = _train(recipe_for(training={**common, "gradient_checkpointing": True}, method=method))
    base = checkpointed.built.model.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    before, after = _adapter_weights(plain), _adapter_weights(checkpointed)
    for name in before:
        torch.testing.assert_close(before[name], after[name], atol=1e-6, rtol=1e-5)
