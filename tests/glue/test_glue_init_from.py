"""``glue.init_from``: the GLUE stage fine-tunes ready-made encoders (a folder written by
``nasplug import-official``) beside, or without, retrained models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasplug.errors import NasplugError
from nasplug.pipeline import parse_stages, run_recipe
from nasplug.recipe import validate_recipe

PREFIX = "model.ckpt-3"


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The golden official checkpoint converted as a user would, with a 200-token vocabulary."""
    root = os.environ.get("NASPLUG_SHARED_FIXTURES")
    base = Path(root) if root else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    golden = base / "lvbert-official-tiny" / "checkpoint"
    if not (golden / (PREFIX + ".index")).is_file():
        pytest.skip(f"golden fixture not found at {golden}")
    from nasplug.spaces.lvbert.official import import_official
    from nasplug.text.tokenizer import save_tokenizer, tokenizer_from_vocab, with_max_length

    out = tmp_path_factory.mktemp("released") / "lvbert-tiny"
    import_official(golden / PREFIX, out)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz",
             *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz")]
    words += [f"w{i}" for i in range(200 - len(words))]
    (out / "vocab.txt").write_text("\n".join(words) + "\n")
    save_tokenizer(with_max_length(tokenizer_from_vocab(out / "vocab.txt"), 64), out / "tokenizer")
    return out


def recipe(glue: dict, **extra) -> dict:
    return {"name": "glue-only", "space": {"name": "lvbert", "size": None, "hidden": 32, "heads": 1, "ffn": 64,
                                           "embedding": 32, "slots": 2, "vocab_size": 200, "max_positions": 64},
            "glue": glue, **extra}


def test_a_recipe_without_retraining_fine_tunes_the_imported_model(released, shared_data, tmp_path):
    glue = {"source": str(shared_data / "glue"), "tasks": ["RTE"], "epochs": 1, "max_train_examples": 16,
            "max_eval_examples": 16, "max_len": 48, "seeds": [0], "batch_size": 8, "predict_test": False,
            "progress": False, "optimizer": "official", "official_padding": True,
            "init_from": {"released": str(released)}}
    ctx = run_recipe(validate_recipe(recipe(glue)), tmp_path / "run", resume=False, stages=parse_stages(None),
                     progress=False)
    import json

    result = json.loads((tmp_path / "run" / "glue" / "released" / "RTE.json").read_text())
    assert result["status"] == "ok" and "accuracy" in result["median"]
    assert result["train_examples"] == 16
    assert "released" in (ctx.extras.get("report_table") or (tmp_path / "run" / "report.md").read_text())


def test_init_from_errors_name_the_field(released, tmp_path):
    from nasplug.glue.models import init_from_model

    with pytest.raises(NasplugError, match=r"glue.init_from.x: .*does not exist"):
        init_from_model("x", str(tmp_path / "nowhere"), False, None, None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NasplugError, match=r"glue.init_from.x: .*holds no model"):
        init_from_model("x", str(tmp_path / "empty"), False, None, None)
    model = init_from_model("x", {"path": str(released)}, True, None, None)  # tokenizer found beside the model
    assert model.slots == 8 and len(model.tokenizer) == 200
    net = model.factory(3, 0)
    assert net.config.conv_sees_padding and net.classifier.out_proj.out_features == 3
    clash = recipe({"init_from": {"found": str(released)}}, retrain={"steps": 1})
    from nasplug.glue.stage import GlueStage
    from nasplug.pipeline.context import RunContext

    ctx = RunContext(recipe=validate_recipe(clash), run_dir=tmp_path / "clash")
    with pytest.raises(NasplugError, match="glue.init_from.found: 'found' is already"):
        GlueStage().check(ctx)


def test_a_diverged_task_is_marked_failed_and_a_resume_fine_tunes_it_again(released, shared_data, tmp_path,
                                                                           monkeypatch):
    """A NaN loss is no result: the task is `failed` (no figure, no average), and `--resume`
    (with a lower glue.lr, which a resume may change) fine-tunes it again."""
    import importlib
    import json

    import torch

    finetune = importlib.import_module("nasplug.glue.finetune")  # the module (nasplug.glue.finetune is also a function)

    glue = {"source": str(shared_data / "glue"), "tasks": ["RTE"], "epochs": 1, "max_train_examples": 16,
            "max_eval_examples": 16, "max_len": 48, "seeds": [0], "batch_size": 8, "predict_test": False,
            "progress": False, "init_from": {"released": str(released)}}
    real = finetune.logits_of
    monkeypatch.setattr(finetune, "logits_of", lambda model, batch: real(model, batch) * float("nan"))
    run_recipe(validate_recipe(recipe(glue)), tmp_path / "run", resume=False, stages=parse_stages(None),
               progress=False)
    path = tmp_path / "run" / "glue" / "released" / "RTE.json"
    failed = json.loads(path.read_text())
    assert failed["status"] == "failed" and "diverged: loss is nan at step 1" in failed["error"]
    assert failed["median"] == {} and failed["per_seed"] == []
    scores = json.loads((tmp_path / "run" / "glue" / "released" / "scores.json").read_text())
    assert scores["electra_dev"]["score"] is None and any(m.startswith("RTE") for m in scores["electra_dev"]["missing"])
    assert (
        "| RTE " in (tmp_path / "run" / "report.md").read_text()
        and "failed" in (tmp_path / "run" / "report.md").read_text()
    )

    monkeypatch.setattr(finetune, "logits_of", real)
    lower = {**glue, "lr": 1e-4}
    run_recipe(validate_recipe(recipe(lower)), tmp_path / "run", resume=True, stages=parse_stages("glue,report"),
               progress=False)
    again = json.loads(path.read_text())
    assert again["status"] == "ok" and torch.isfinite(torch.tensor(again["median"]["accuracy"]))
