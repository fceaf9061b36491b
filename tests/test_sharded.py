"""An adapter saved from FSDP-gathered weights holds its tuner weights and reloads with plain PEFT.

Real torch FSDP (version 1, ``use_orig_params``, each BERT layer its own unit, as ``fsdp.yaml``) on
the CPU with gloo and one process: the module names keep FSDP's wrapper segments, which made PEFT save
only the head (seen on an H100 before :mod:`adapters.sharded`).
"""

from __future__ import annotations

import functools
import socket
from pathlib import Path

import pytest
import torch

from adapters.sharded import FSDP_SEGMENT, save_adapter


@pytest.fixture
def process_group():
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fsdp_gathered_adapter_keeps_lora_and_reloads(
    process_group, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from peft import AutoPeftModelForSequenceClassification, LoraConfig, get_peft_model
    from safetensors.torch import load_file
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from transformers import AutoModelForSequenceClassification
    from transformers.models.bert.modeling_bert import BertLayer

    torch.manual_seed(0)
    base = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)
    lora = LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"], modules_to_save=["pooler"])
    wrapped = FSDP(
        get_peft_model(base, lora),
        auto_wrap_policy=functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={BertLayer}),
        use_orig_params=True,
        device_id=torch.device("cpu"),
    )
    inputs = torch.randint(1000, 2000, (4, 10))
    optimizer = torch.optim.AdamW([p for p in wrapped.parameters() if p.requires_grad], lr=5e-2)
    for _ in range(5):  # LoRA B starts at zero: train until it matters
        wrapped(input_ids=inputs, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    wrapped.eval()
    with torch.no_grad():
        trained = wrapped(input_ids=inputs).logits.softmax(-1)
    with FSDP.state_dict_type(
        wrapped, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=True)
    ):
        full_state = wrapped.state_dict()  # what accelerator.get_state_dict returns under FSDP
    model = wrapped.module
    assert any(FSDP_SEGMENT in name for name, _ in model.named_modules())  # the situation under test

    save_adapter(model, tmp_path, full_state)

    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert sum("lora_B" in key for key in saved) == 4  # 2 layers x (query, value)
    assert not any(FSDP_SEGMENT in key for key in saved)
    assert any("classifier" in key for key in saved) and any("pooler" in key for key in saved)
    reloaded = AutoPeftModelForSequenceClassification.from_pretrained(tmp_path, num_labels=2).eval()
    with torch.no_grad():
        again = reloaded(input_ids=inputs).logits.softmax(-1)
    assert float((trained - again).abs().max()) < 1e-5
    lora_b = saved["base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight"]
    assert float(lora_b.abs().max()) > 0  # trained: a reload without it would not have passed the check above
