"""How close does a training step come to what this machine can do? Peak GEMM rate vs training FLOP rate.

1. Peak: the best fp32 matrix-multiply rate torch reaches here (square GEMMs, and the GEMM shapes of a
   MiniLM step: tokens x 384 x 384 / 1536), with the recipe's thread count. On a GPU, bf16 too.
2. Training: the default recipe's model (all-MiniLM-L6-v2 + LoRA r=16 + trainable pooler and head) on
   real German Credit batches from the recipe's own dataloader (length-grouped, no padding beyond the
   batch's longest row). FLOPs per step are counted, not estimated from a formula: torch's
   ``FlopCounterMode`` over one forward + backward (matmuls, attention); the timed steps include the
   optimizer. Utilisation = counted FLOPs / measured seconds / peak. On CPU the same steps run a second
   time with torch's own dropout masks (``training.fast_cpu_dropout: false``): the ratio is what the
   recipe's masks save. Last, the steps run with the full last layer (``training.first_token_last_layer:
   false``): the ratio is what computing that layer for the first token alone saves.

Run: python benchmarks/machine_peak.py [--threads 2] [--steps 12]   (about 3 minutes on 2 cores)
Writes benchmarks/results/machine_peak.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import REPO, machine


def gemm_rate(m: int, k: int, n: int, dtype, device: str, seconds: float = 1.5) -> float:
    """Best-of-repeats GFLOP/s of an (m x k) @ (k x n) product."""
    import torch

    a = torch.randn(m, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)
    for _ in range(3):
        torch.mm(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(5):
            torch.mm(a, b)
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 5 * 2 * m * k * n / (time.perf_counter() - started) / 1e9)
    return best


def training_rate(
    steps: int, batch_size: int, device: str = "cpu", fast_dropout: bool = True, first_token: bool = True
) -> dict:
    """Counted FLOPs per step and seconds per step of the default recipe's model on real batches.

    ``fast_dropout`` (CPU): the recipe's dropout masks (``training.fast_cpu_dropout``); False: torch's.
    ``first_token``: the last layer computes the first token only (``training.first_token_last_layer``);
    False: every position, as a plain transformers model does.

    On ``cuda`` the model trains under bf16 autocast (the recipe's ``mixed_precision: bf16``), and the
    clock waits for the GPU at each step's end."""
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import adapters
    from adapters.data import prepare_data, resolve_data_config
    from adapters.data.tokenize import make_dataloader, tokenize_splits
    from adapters.modeling import build_model

    recipe = adapters.load_recipe("german-credit/lora")
    data_config = resolve_data_config(recipe.data)
    prepared = prepare_data(data_config)
    torch.manual_seed(0)
    built = build_model(recipe.model, recipe.method, prepared.label_names, prepared.positive_label)
    model, tokenizer = built.model, built.tokenizer
    if device == "cpu" and fast_dropout:  # as adapters.train does on a CPU (training.fast_cpu_dropout)
        from adapters.dropout import use_fast_cpu_dropout

        use_fast_cpu_dropout(model)
    if first_token:  # as adapters.train does (training.first_token_last_layer)
        from adapters.first_token import use_first_token_last_layer

        use_first_token_last_layer(model)
    tokenized = tokenize_splits(prepared.to_datasets(), tokenizer, data_config.max_length)
    loader = make_dataloader(tokenized["train"], tokenizer, batch_size, train=True, seed=0)
    inputs = tokenizer.model_input_names
    model.to(device)
    batches = [
        ({name: batch[name].to(device) for name in inputs if name in batch}, batch["labels"].to(device))
        for batch, _ in zip(loader, range(steps + 2), strict=False)
    ]
    autocast = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device == "cuda" else contextlib.nullcontext
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()

    def step(features: dict, labels) -> None:
        with autocast():
            logits = model(**features).logits
        torch.nn.functional.cross_entropy(logits.float(), labels).backward()

    flops = []
    for features, labels in batches:
        counter = FlopCounterMode(display=False)
        with counter:
            step(features, labels)
        optimizer.zero_grad()
        flops.append(counter.get_total_flops())
    times = []
    for features, labels in batches:
        started = time.perf_counter()
        step(features, labels)
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    tokens = [int(features["attention_mask"].sum()) for features, _ in batches]
    padded = [features["attention_mask"].numel() for features, _ in batches]
    # the first two steps warm up allocator and kernels; the rest are measured
    flops, times, tokens, padded = flops[2:], times[2:], tokens[2:], padded[2:]
    return {
        "steps": len(times),
        "batch_size": batch_size,
        "tokens_per_step": statistics.mean(tokens),
        "padding_fraction": 1 - sum(tokens) / sum(padded),
        "counted_gflop_per_step": statistics.mean(flops) / 1e9,
        "seconds_per_step": statistics.median(times),
        "achieved_gflops": sum(flops) / sum(times) / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/machine_peak.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    tokens = 16 * 211  # a German Credit batch: 16 rows of about 211 tokens
    peaks = {
        "fp32_square_2048": gemm_rate(2048, 2048, 2048, torch.float32, "cpu"),
        "fp32_square_1024": gemm_rate(1024, 1024, 1024, torch.float32, "cpu"),
        "fp32_minilm_qkv": gemm_rate(tokens, 384, 384, torch.float32, "cpu"),
        "fp32_minilm_ffn": gemm_rate(tokens, 384, 1536, torch.float32, "cpu"),
    }
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        peaks["bf16_cuda_square_8192"] = gemm_rate(8192, 8192, 8192, torch.bfloat16, "cuda")
    # CPU: against the fp32 peak; GPU: bf16 training against the bf16 GEMM peak (MFU)
    peak = (
        peaks["bf16_cuda_square_8192"]
        if device == "cuda"
        else max(value for key, value in peaks.items() if key.startswith("fp32"))
    )
    training = training_rate(args.steps, args.batch_size, device)
    utilisation = training["achieved_gflops"] / peak
    torch_dropout = None
    if device == "cpu":  # the same step with torch's dropout masks: what training.fast_cpu_dropout saves
        torch_dropout = training_rate(args.steps, args.batch_size, device, fast_dropout=False)
        torch_dropout["utilisation_of_peak"] = torch_dropout["achieved_gflops"] / peak
        torch_dropout["step_speedup_of_fast_dropout"] = (
            torch_dropout["seconds_per_step"] / training["seconds_per_step"]
        )
    # The same step computing the last layer at every position, as a plain transformers model does: the
    # ratio is what training.first_token_last_layer saves. Its counted FLOPs are the model's full FLOPs,
    # so full FLOPs / the recipe's step time is the rate a full-FLOP count (the MFU convention) credits.
    full_layer = training_rate(args.steps, args.batch_size, device, first_token=False)
    full_layer["utilisation_of_peak"] = full_layer["achieved_gflops"] / peak
    full_layer["step_speedup_of_first_token"] = full_layer["seconds_per_step"] / training["seconds_per_step"]
    full_layer["model_flop_utilisation_of_recipe_step"] = (
        full_layer["counted_gflop_per_step"] / training["seconds_per_step"] / peak
    )
    record = {
        "machine": machine(),
        "threads": args.threads,
        "peak_gflops": peaks,
        "device": device,
        "peak_used_gflops": peak,
        "training": training,
        "utilisation_of_peak": utilisation,
        "training_with_torch_dropout": torch_dropout,
        "training_with_full_last_layer": full_layer,
        "target": "training FLOP utilisation: CPU >= 60 % of the fp32 peak; H100 >= 40 % MFU in bf16",
        "target_met": utilisation >= (0.40 if device == "cuda" else 0.60),
    }
    for name, value in peaks.items():
        print(f"{name:24s} {value:8.1f} GFLOP/s")
    print(
        f"training: {training['counted_gflop_per_step']:.1f} GFLOP/step counted, "
        f"{training['seconds_per_step']:.3f} s/step, {training['achieved_gflops']:.1f} GFLOP/s, "
        f"{training['tokens_per_step']:.0f} tokens/step, padding {training['padding_fraction']:.1%}"
    )
    kind = "bf16 GPU" if device == "cuda" else "fp32"
    print(f"utilisation: {utilisation:.1%} of the measured {kind} peak ({peak:.1f} GFLOP/s)")
    if torch_dropout:
        print(
            f"with torch's dropout masks: {torch_dropout['seconds_per_step']:.3f} s/step, "
            f"{torch_dropout['utilisation_of_peak']:.1%} of peak; the recipe's masks make a step "
            f"{torch_dropout['step_speedup_of_fast_dropout']:.2f}x as fast"
        )
    print(
        f"with the full last layer: {full_layer['counted_gflop_per_step']:.1f} GFLOP/step, "
        f"{full_layer['seconds_per_step']:.3f} s/step, {full_layer['utilisation_of_peak']:.1%} of peak; "
        f"the first-token last layer makes a step {full_layer['step_speedup_of_first_token']:.2f}x as fast "
        f"(full-model FLOPs / recipe step time: {full_layer['model_flop_utilisation_of_recipe_step']:.1%})"
    )
    Path(args.output).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
