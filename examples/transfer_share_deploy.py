"""Transfer, document, share and deploy: the life of an adapter after the first training run.

1. Train portfolio A (South German Credit), then portfolio B *starting from A* (``model.init_adapter``);
   B's lineage records A as its parent. (B's "portfolio" is the Statlog release of the same applicants:
   a stand-in for a second loan book, enough to show the mechanics.)
2. Print the chain, preview what a Hub push would upload (``--dry-run``: no token, no network).
3. Serve both on one base model (``MultiAdapter``), merge B into a standalone transformers model, and
   export B to ONNX with int8 weights for a small CPU box, with the parity report.

Run: python examples/transfer_share_deploy.py   (about 5 minutes on 2 CPU cores; no network needed)
"""

from pathlib import Path

import adapters
from adapters.export import export_onnx
from adapters.lineage import format_lineage, read_lineage
from adapters.merge import merge_adapter

root = Path("outputs/example-transfer")
quick = {"training.epochs": 1}  # one epoch each: enough to show the mechanics

# 1. Portfolio A, then portfolio B starting from A's adapter (and head: the labels are the same).
first = adapters.train(
    "german-credit/lora", {**quick, "name": "portfolio-a"}, output_dir=root / "portfolio-a", overwrite=True
)
second = adapters.train(
    "german-credit/lora",
    {
        **quick,
        "name": "portfolio-b",
        "data.source": "statlog_german_credit",
        "model.init_adapter": str(first.output_dir),
    },
    output_dir=root / "portfolio-b",
    overwrite=True,
)
print(
    "test ROC-AUC  A:",
    round(first.metrics["test"]["roc_auc"], 3),
    " B:",
    round(second.metrics["test"]["roc_auc"], 3),
)

# 2. The documented chain, and what `adapters push DIR org/name` would upload.
print(format_lineage(read_lineage(second.output_dir)))
preview = adapters.push(
    second.output_dir, "my-org/credit-portfolio-b", dry_run=True, dry_run_dir=root / "preview"
)
print("would upload:", [name for name, _ in preview.files], "kept local:", sorted(preview.left_out))

# 3. Both adapters on one base model; a row-wise mix of adapters in one call.
applicants = adapters.data.load_builtin("south_german_credit").drop(columns="credit_risk").head(4)
multi = adapters.MultiAdapter({"a": first.output_dir, "b": second.output_dir})
print(multi.predict_proba(applicants, adapter=["a", "b", "a", "b"]).round(3))

merged = merge_adapter(second.output_dir, root / "portfolio-b-merged", overwrite=True)
print("merged model (transformers.pipeline('text-classification', model=...)):", merged)
report = export_onnx(second.output_dir, root / "portfolio-b-onnx", int8=True, overwrite=True)
print(
    "ONNX int8 vs PyTorch: max |Δp|",
    f"{report['onnx_int8']['max_abs_prob_diff']:.2e}",
    "ROC-AUC",
    report["onnx_int8"]["roc_auc"],
    "vs",
    report["reference_roc_auc"],
)
