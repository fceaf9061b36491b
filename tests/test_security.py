"""Safe loading and writing: safetensors only, remote code only if asked, no path escapes or token leaks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

import adapters
from adapters.cli import main
from adapters.errors import AdaptersUserError
from adapters.recipe import load_recipe
from tests.conftest import make_frame, write_data

PLANTED_TOKEN = "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0123"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ".hidden", "x\\y", "/abs", "", "a" * 200])
def test_recipe_name_cannot_escape_the_output_directory(name: str) -> None:
    with pytest.raises(AdaptersUserError, match="name"):
        load_recipe({"name": name})


def test_name_derived_from_a_file_name_is_made_safe(tmp_path: Path) -> None:
    path = tmp_path / "my recipe (v2)!.yaml"
    path.write_text("training: {epochs: 1}\n")
    recipe = load_recipe(path)
    assert recipe.name == f"{tmp_path.name}-my-recipe-v2"
    assert recipe.output_dir == Path("outputs") / recipe.name


def _record_trust_remote_code(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every Auto*.from_pretrained call's trust_remote_code (missing means the library default, False)."""
    import transformers

    seen: list[object] = []
    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"):
        cls = getattr(transformers, name)
        real = cls.from_pretrained.__func__

        def wrapped(klass, *args, _real=real, **kwargs):
            seen.append(kwargs.get("trust_remote_code", False))
            return _real(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(wrapped))
    return seen


@pytest.mark.parametrize("trust", [False, True])
def test_trust_remote_code_only_when_the_recipe_says_so(
    trust: bool, recipe_for, frame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _record_trust_remote_code(monkeypatch)
    recipe = recipe_for(model={"trust_remote_code": trust}, training={"max_steps": 1})
    result = adapters.train(recipe, data=frame, output_dir=tmp_path / "out", progress=False)
    result.load()
    assert seen and set(seen) == {trust}  # training, parity check and reload all pass the recipe's value
    card = (tmp_path / "out" / "README.md").read_text()
    assert ("**executed**" in card) is trust and ("trust_remote_code: false" in card) is not trust


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def test_planted_hub_token_never_written_and_only_safetensors(
    recipe_for, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, caplog
) -> None:
    """With HF_TOKEN set, no written file (artifact, logs, checkpoints, predictions) or output has it."""
    from adapters import checkpoint

    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", PLANTED_TOKEN)
    caplog.set_level(logging.DEBUG)
    checkpoint_files: dict[str, bytes] = {}
    real_save = checkpoint.CheckpointDir.save

    def keep_bytes(self, loop, best):  # checkpoints are deleted after success: scan them as they appear
        path = real_save(self, loop, best)
        checkpoint_files.update({str(file): file.read_bytes() for file in _files_under(path)})
        return path

    monkeypatch.setattr(checkpoint.CheckpointDir, "save", keep_bytes)
    csv = write_data(tmp_path, make_frame(60))
    recipe = recipe_for(
        data={"source": str(csv)},
        training={
            "max_steps": 4,
            "eval_every": 2,
            "checkpoint_every": 2,
            "log_with": ["tensorboard"],
            "output_dir": str(tmp_path / "out"),
        },
    )
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(recipe_path), "--no-progress"]) == 0
    assert (
        main(["predict", str(tmp_path / "out"), "--input", str(csv), "--output", str(tmp_path / "p.csv")])
        == 0
    )
    assert main(["eval", str(tmp_path / "out")]) == 0

    written = {str(path): path.read_bytes() for path in _files_under(tmp_path)}
    assert checkpoint_files and any("events.out.tfevents" in name for name in written)
    for name, content in {**written, **checkpoint_files}.items():
        assert PLANTED_TOKEN.encode() not in content, name
    captured = capsys.readouterr()
    assert PLANTED_TOKEN not in captured.out + captured.err + caplog.text

    artifact = _files_under(tmp_path / "out")
    assert not [path for path in artifact if path.suffix in PICKLE_SUFFIXES]
    tensors = [path.name for path in artifact if path.suffix == ".safetensors"]
    assert tensors == ["adapter_model.safetensors"]
    weights = [name for name in checkpoint_files if "trainable" in name or "best" in name]
    assert weights and all(name.endswith(".safetensors") for name in weights)
