"""The artifact directory: everything after training reads it, never the training objects.

Written atomically: files go to a hidden staging directory beside the target, a save → reload → predict
parity check runs on it with plain PEFT, and only then is it renamed into place. A crash or a failed check
leaves no half-written output directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adapters.errors import AdaptersUserError
from adapters.heads import class_logits, target_scale, to_scores, verbalizer_of, with_question
from adapters.recipe import ModelConfig, Recipe
from adapters.sharded import save_adapter

__all__ = [
    "refuse_existing",
    "staging_path",
    "staging_dir",
    "check_output_location",
    "CHECKPOINTS",
    "publish",
    "write_artifact",
    "write_json",
    "staged_output",
    "ARTIFACT_FILES",
]

CHECKPOINTS = "checkpoints"  # inside the staging dir; removed before the artifact is published

ARTIFACT_FILES = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "config.json",
    "recipe.yaml",
    "metrics.json",
    "predictions.csv",
    "README.md",
    "lineage.json",
)


def refuse_existing(output_dir: Path, overwrite: bool) -> None:
    """An existing output dir is replaced only when asked (checked before any work starts)."""
    if Path(output_dir).exists() and not overwrite:
        raise AdaptersUserError(
            "output directory exists; pass --overwrite (overwrite=True) to replace it", where=str(output_dir)
        )


def check_output_location(output_dir: Path, data: Path | None, others: Sequence[Path] = ()) -> None:
    """Refuse an output dir that holds an input, lies in the data's directory, or cannot be written.

    ``--overwrite`` replaces the output dir wholesale, so an output dir that contains the data (or the
    recipe) would delete it; one inside the data directory mixes results into data, which a directory
    source reads back next time. The working directory itself is exempt when the data sits directly in
    it (``data.source: loans.csv`` with the default ``outputs/NAME``).
    """
    target = Path(output_dir).resolve()
    for source in [*([data] if data is not None else []), *others]:
        source = Path(source).resolve()
        if target == source or target in source.parents:
            raise AdaptersUserError(
                f"output directory contains the data or recipe {source}, which --overwrite would delete; "
                "choose another --output",
                where=str(output_dir),
            )
    if data is not None:
        source = Path(data).resolve()
        folder = source if source.is_dir() else source.parent
        working = Path.cwd().resolve()
        exempt = not source.is_dir() and (folder == working or folder in working.parents)
        if folder in target.parents and not exempt:
            raise AdaptersUserError(
                f"output directory is inside the data directory {folder}; choose another --output",
                where=str(output_dir),
            )
    ancestor = target
    while not ancestor.exists():
        ancestor = ancestor.parent
    try:
        if not ancestor.is_dir():
            raise NotADirectoryError(f"{ancestor} is a file")
        probe = tempfile.mkdtemp(dir=ancestor, prefix=".adapters-write-test-")
        os.rmdir(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"output directory is not writable ({reason})"
        raise AdaptersUserError(message, where=str(output_dir)) from None


def staging_path(output_dir: Path) -> Path:
    """The hidden directory beside ``output_dir`` where an artifact is assembled (same on every process)."""
    output_dir = Path(output_dir)
    return output_dir.parent / f".{output_dir.name}.partial"


def staging_dir(output_dir: Path, resume: bool = False, overwrite: bool = False) -> Path:
    """The staging dir beside ``output_dir``: kept with its checkpoints on resume, else made empty.

    A stale staging dir without checkpoints is debris of a crash and is discarded; one with checkpoints
    is an interrupted run, which is only discarded when asked (``--overwrite``).
    """
    from adapters.checkpoint import latest_checkpoint

    staging = staging_path(output_dir)
    interrupted = latest_checkpoint(staging / CHECKPOINTS) is not None
    if resume and staging.is_dir():
        for child in staging.iterdir():
            if child.name not in (CHECKPOINTS, "logs"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        return staging
    if interrupted and not overwrite:
        raise AdaptersUserError(
            "an interrupted run left checkpoints here; pass --resume to continue it or --overwrite to "
            "start over",
            where=str(staging),
        )
    staging.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def publish(staging: Path, output_dir: Path) -> None:
    """Move a complete staging dir into place; an old output dir is removed only after the move."""
    output_dir = Path(output_dir)
    old = output_dir.parent / f".{output_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if output_dir.exists():
        os.replace(output_dir, old)
    os.replace(staging, output_dir)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_output(output_dir: Path, overwrite: bool = False) -> Iterator[Path]:
    """A staging directory beside ``output_dir``, published when the block ends and removed if it fails.

    What every command that writes a directory (merge, export, combine) needs: nothing half-written.
    """
    staging = staging_dir(output_dir, overwrite=overwrite)
    try:
        yield staging
        publish(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def json_safe(payload: Any) -> Any:
    """NaN (e.g. ROC-AUC of a one-class split) becomes null, so the JSON stays valid."""
    if isinstance(payload, dict):
        return {key: json_safe(value) for key, value in payload.items()}
    if isinstance(payload, list | tuple):
        return [json_safe(value) for value in payload]
    if isinstance(payload, float) and payload != payload:
        return None
    return payload


def write_json(path: Path, payload: Any) -> None:
    """JSON with NaN as null and numpy numbers as floats, so every reader can parse it."""
    text = json.dumps(json_safe(payload), indent=2, allow_nan=False, default=float)
    path.write_text(text + "\n", encoding="utf-8")


def predictions_frame(
    row_ids: Sequence[str],
    labels: Sequence[Any],
    probabilities: np.ndarray,
    label_names: list[str],
    task: str = "classification",
    separator: str = "|",
) -> pd.DataFrame:
    """``row_id``, the true ``label`` and the scores: one ``prob_<label>`` column per label, or, for
    regression, the ``prediction``. Multi-label true labels are joined with ``separator``."""
    if task == "regression":
        return pd.DataFrame({"row_id": list(row_ids), "label": list(labels), "prediction": probabilities})
    if task == "sft":  # the reference response and the model's mean loss per response token on it
        losses = probabilities[:, 0] / np.maximum(probabilities[:, 1], 1)
        return pd.DataFrame({"row_id": list(row_ids), "label": list(labels), "loss_per_token": losses})
    if task == "token_classification":  # tags of each word, true and predicted (scored words only)
        truth = [" ".join(label_names[i] for i in row) for row in labels]
        predicted = [" ".join(label_names[i] for i in row.argmax(-1)) for row in probabilities]
        return pd.DataFrame({"row_id": list(row_ids), "label": truth, "prediction": predicted})
    if task == "multi_label":
        truth = [separator.join(n for n, v in zip(label_names, row, strict=True) if v) for row in labels]
    else:
        truth = [label_names[i] for i in labels]
    frame = pd.DataFrame({"row_id": list(row_ids), "label": truth})
    for index, name in enumerate(label_names):
        frame[f"prob_{name}"] = probabilities[:, index]
    return frame


def check_parity(
    model: Any,
    tokenizer: Any,
    adapter_dir: Path,
    texts: list[str],
    model_config: ModelConfig | None = None,
    max_length: int = 256,
    expected: np.ndarray | None = None,
) -> float:
    """Reload ``adapter_dir`` with plain PEFT and compare probabilities; raise if they differ.

    This is the guard against the lost-head bug: a head that was not saved reloads random and the
    probabilities differ by far more than float noise. The reference is the trained model in memory, or,
    when FSDP/DeepSpeed hold it in shards, ``expected``: the probabilities the run itself reported.
    """
    import torch

    from adapters.reload import load_adapter_model

    model_config = model_config or ModelConfig()
    device = next(model.parameters()).device
    reloaded, _ = load_adapter_model(adapter_dir, model_config, device)
    model.eval()
    verbalizer = verbalizer_of(reloaded.get_base_model())
    answer_ids = verbalizer["token_ids"] if verbalizer else None
    if getattr(reloaded.get_base_model().config, "adapters_task", None) == "sft":
        answer_ids = slice(None)  # the whole next-token distribution at the last position
    encoded = tokenizer(
        with_question(texts, verbalizer),
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )
    references = (reloaded,) if expected is not None else (model, reloaded)
    config = reloaded.get_base_model().config
    problem_type, scale = config.problem_type, target_scale(config)
    with torch.no_grad():
        probabilities = [
            to_scores(
                class_logits(net, {k: v.to(device) for k, v in encoded.items()}, answer_ids).float(),
                problem_type,
                scale,
            ).cpu()
            for net in references
        ]
    before = torch.as_tensor(expected, dtype=torch.float32) if expected is not None else probabilities[0]
    after = probabilities[-1]
    difference = float((before - after).abs().max())
    if problem_type == "regression":  # in units of the target's spread, not of the target
        difference /= scale[1]
    # k-bit kernels and bf16 round differently after reloading (CUDA preparation casts norms to fp32)
    # Exact only when the trained model was float32 throughout: DeepSpeed's bf16 mode, for one, keeps
    # the whole model in bf16, while a plain reload puts the adapter on the float32 base.
    exact = (
        expected is None
        and model_config.quantization == "none"
        and next(model.parameters()).dtype == torch.float32
    )
    tolerance = 1e-4 if exact else 2e-2
    if difference > tolerance:
        raise RuntimeError(
            f"save → reload parity check failed: probabilities differ by {difference:.3g} "
            f"(tolerance {tolerance}); the adapter in {adapter_dir} does not reproduce the "
            "trained model (task head not saved?) — nothing was written"
        )
    return difference


def write_artifact(
    staging: Path, outcome: Any, recipe: Recipe, data: Any, lineage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Save adapter, tokenizer, label config, recipe, metrics, predictions, plots, lineage and card into
    ``staging``."""
    from adapters.card import write_model_card
    from adapters.fairness import report_for_run
    from adapters.lineage import LINEAGE_FILE
    from adapters.plots import write_run_plots

    model, tokenizer = outcome.built.model, outcome.built.tokenizer
    save_adapter(model, staging, outcome.full_state)  # full_state: gathered from FSDP/DeepSpeed shards
    tokenizer.save_pretrained(staging)
    model.get_base_model().config.save_pretrained(staging)  # labels, problem type, decision threshold
    (staging / "recipe.yaml").write_text(recipe.to_yaml(), encoding="utf-8")
    privacy = getattr(outcome, "privacy", None)  # DP-SGD: the accountant's spent epsilon and delta
    reported = {**outcome.metrics, "cost": outcome.cost, **({"privacy": privacy} if privacy else {})}
    write_json(staging / "metrics.json", reported)
    test = data.frames["test"]
    predictions_frame(
        test["row_id"],
        test["label"].tolist(),
        outcome.test_probabilities,
        data.label_names,
        recipe.task,
        recipe.data.label_separator,
    ).to_csv(staging / "predictions.csv", index=False)
    sharded = outcome.full_state is not None  # the model in memory is a shard: compare with the run's output
    texts = data.frames["test" if sharded else "validation"]["text"].head(8).tolist()
    raw = getattr(outcome, "raw_test_probabilities", None)
    expected = (raw if raw is not None else outcome.test_probabilities)[:8] if sharded else None
    difference = check_parity(
        model, tokenizer, staging, texts, recipe.model, recipe.data.max_length, expected
    )
    summary = {
        "best_step": outcome.best_step,
        "steps": outcome.steps,
        "train_seconds": round(outcome.seconds, 1),
        "parity_max_abs_diff": difference,
        "num_processes": outcome.accelerator.num_processes,
        "history": outcome.history,
        "data": data.info,
        "base_model": outcome.built.provenance,
        # training.png for every task; roc, reliability (binary) and confusion for classification
        "plots": write_run_plots(staging, outcome, recipe, data),
    }
    # eval.fairness: fairness.json + fairness.png on the test split (None when the recipe lists none);
    # the summary file records the gap check, the returned summary and the card get the whole report.
    fairness = report_for_run(staging, outcome, recipe, data)
    if fairness is not None:
        summary.update(fairness_max_gap=fairness["max_gap"], fairness_gap_exceeded=fairness["gap_exceeded"])
    write_json(staging / "training_summary.json", summary)
    if fairness is not None:
        summary["fairness"] = fairness
    if lineage is not None:
        write_json(staging / LINEAGE_FILE, lineage)
    write_model_card(staging, recipe, data, reported, summary, lineage)
    return summary
