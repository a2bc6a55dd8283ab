"""Found models in the Hugging Face ecosystem: exported folders load without nasplug, train
with Trainer, export with torch.export and ONNX, and serve the fill-mask pipeline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nasplug.oneshot.checkpoint import save_weights
from nasplug.spaces.lvbert import LVBertSpace
from nasplug.spaces.lvbert.export import export_model

REPO = Path(__file__).resolve().parents[2]
TINY_PIPELINE = REPO / "tests" / "data" / "tiny-pipeline.yaml"
SPACE = dict(size=None, hidden=32, heads=2, ffn=64, embedding=16, slots=4, vocab_size=120, max_positions=64)
#: A subprocess that cannot import nasplug: the exported code must stand alone.
BLOCK_NASPLUG = '''
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "nasplug" or name.startswith("nasplug."):
            raise ImportError("nasplug is blocked in this process")
sys.meta_path.insert(0, Block())
'''


def exported(folder: Path, head: str, num_labels: int = 0) -> tuple[torch.nn.Module, Path]:
    space = LVBertSpace(**SPACE)
    extra = {"num_labels": num_labels} if num_labels else {}
    model = space.build(space.parse("CAFA"), head=head, seed=0, **extra).eval()
    save_weights(model, folder / "model.safetensors")
    export_model(model, folder)
    return model, folder


def load_elsewhere(python: Path, folder: Path, auto: str, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of ``folder`` loaded with ``transformers.<auto>`` by ``python`` (a venv without
    nasplug, see conftest), which also loads the folder's tokenizer, when it has one, with
    ``BertTokenizerFast`` and ``AutoTokenizer``: no prompt, and no warning about the model type."""
    torch.save(inputs, folder / "inputs.pt")
    code = BLOCK_NASPLUG + textwrap.dedent(f"""
        import os, torch, transformers
        model = getattr(transformers, "{auto}").from_pretrained("{folder}", trust_remote_code=True).eval()
        if os.path.isfile("{folder}/tokenizer.json"):
            standard = transformers.BertTokenizerFast.from_pretrained("{folder}")
            auto = transformers.AutoTokenizer.from_pretrained("{folder}", trust_remote_code=True)
            assert standard("a b", "c")["input_ids"] == auto("a b", "c")["input_ids"]
            print("TOKENIZER", type(standard).__name__)
        assert not any(m.startswith("nasplug") for m in sys.modules), "nasplug was imported"
        with torch.no_grad():
            logits = model(**torch.load("{folder}/inputs.pt")).logits
        torch.save(logits, "{folder}/logits.pt")
        print(type(model).__module__)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=folder,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "transformers_modules" in done.stdout, "the folder's own code must be used"
    assert "custom code" not in done.stderr and "model of type" not in done.stderr, done.stderr[-3000:]
    return torch.load(folder / "logits.pt")


def padded_inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 120, (3, 20), generator=gen)
    mask = torch.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 5:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask,
            "token_type_ids": (torch.arange(20) >= 10).long().expand(3, 20) * mask}


@pytest.mark.parametrize("head, auto, labels", [("mlm", "AutoModelForMaskedLM", 0),
                                                ("classification", "AutoModelForSequenceClassification", 3)])
def test_exported_folder_loads_without_nasplug_with_equal_logits(tmp_path: Path, python_without_nasplug: Path, head,
                                                                 auto, labels) -> None:
    model, folder = exported(tmp_path, head, labels)
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoConfig"] == "configuration_lvbert.LVBertConfig"
    source = (folder / "modeling_lvbert.py").read_text() + (folder / "configuration_lvbert.py").read_text()
    assert not re.search(r"^\s*(from|import)\s+nasplug", source, re.MULTILINE), "the code must not import nasplug"
    inputs = padded_inputs()
    with torch.no_grad():
        ours = model(**inputs).logits
    assert torch.equal(load_elsewhere(python_without_nasplug, folder, auto, inputs), ours)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = Path(os.environ.get("NASPLUG_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not data.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data folder not found at {data}")
        pytest.skip(f"shared data folder not found at {data}")
    run = tmp_path_factory.mktemp("export") / "run"
    env = {**os.environ, "NASPLUG_DATA_DIR": str(data), "NASPLUG_CACHE": str(run.parent / "cache"),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nasplug", "-q", "run", str(TINY_PIPELINE), "--out", str(run),
                           "--stages", "supernet,search,retrain,glue"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\r" not in done.stderr, "-q: no progress bar of nasplug's or a library's (a log is no terminal)"
    return run


def test_a_retrained_model_folder_is_a_hugging_face_folder(tiny_run: Path, tmp_path: Path,
                                                           python_without_nasplug: Path) -> None:
    from transformers import AutoTokenizer

    from nasplug.oneshot.checkpoint import load_weights

    folder = tiny_run / "retrain" / "found"
    assert {"config.json", "modeling_lvbert.py", "configuration_lvbert.py", "README.md",
            "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "architecture" in card and "parameters" in card
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = dict(tokenizer(["a first sentence", "and a second one"], ["paired with this", "and that"],
                            padding=True, return_tensors="pt"))
    assert inputs["token_type_ids"].max() == 1, "sentence pairs get their second segment"
    arch = json.loads((tiny_run / "top.json").read_text())[0]["arch"]
    space = LVBertSpace(**{**SPACE, "hidden": 32, "heads": 1, "ffn": 64, "embedding": 32, "slots": 3,
                           "vocab_size": 320, "max_positions": 32, "seq_len": 32})
    model = space.build(arch, head="mlm", seed=0).eval()
    load_weights(model, folder / "model.safetensors")
    with torch.no_grad():
        ours = model(**inputs).logits
    assert torch.equal(load_elsewhere(python_without_nasplug, folder, "AutoModelForMaskedLM", inputs), ours)
    # nasplug export: the same folder elsewhere
    out = tmp_path / "exported"
    done = subprocess.run([sys.executable, "-m", "nasplug", "-q", "export", str(tiny_run), "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert torch.equal(load_elsewhere(python_without_nasplug, out, "AutoModelForMaskedLM", inputs), ours)


def test_trainer_fine_tunes_an_exported_model(tmp_path: Path, shared_data: Path) -> None:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
    )

    from nasplug.glue import load_task

    _, folder = exported(tmp_path / "model", "classification", 2)
    tokenizer_source = tmp_path / "tok"
    from nasplug.text.tokenizer import save_tokenizer, train_tokenizer

    tokenizer = train_tokenizer(["a sentence about things", "another sentence"] * 50, 120, tokenizer_source)
    save_tokenizer(tokenizer, folder / "tok")
    tokenizer = AutoTokenizer.from_pretrained(folder / "tok")
    rows = load_task("RTE", shared_data / "glue", splits=["train"]).splits["train"].select(range(16))
    encoded = [dict(tokenizer(r["sentence1"], r["sentence2"], truncation=True, max_length=64), labels=int(r["label"]))
               for r in rows]
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=3, per_device_train_batch_size=4,
                             report_to=[], save_strategy="no", use_cpu=True, logging_steps=1)
    trainer = Trainer(model=model, args=args, train_dataset=encoded, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 3 and result.training_loss > 0


def test_torch_export_and_onnx_match_on_a_padded_batch(tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    model, _ = exported(tmp_path, "mlm")
    inputs = padded_inputs()

    class Logits(torch.nn.Module):  # plain tensors in, plain tensors out
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    wrapped = Logits(model).eval()
    batch, seq = torch.export.Dim("batch", min=1, max=64), torch.export.Dim("seq", min=2, max=64)
    shapes = {name: {0: batch, 1: seq} for name in inputs}
    program = torch.export.export(wrapped, (), dict(inputs), dynamic_shapes=shapes)
    with torch.no_grad():
        expected = wrapped(**inputs)
        longer = {k: torch.cat([v, v[:, :7]], dim=1) for k, v in inputs.items()}
        assert torch.allclose(program.module()(**inputs), expected, atol=1e-5)
        assert torch.allclose(program.module()(**longer), wrapped(**longer), atol=1e-5)  # another length
    path = tmp_path / "model.onnx"
    torch.onnx.export(wrapped, (), str(path), kwargs=dict(inputs), dynamo=True, dynamic_shapes=shapes)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    assert abs(torch.from_numpy(got) - expected).max() < 1e-4


def test_torch_compile_has_no_graph_break_in_the_encoder(tmp_path: Path) -> None:
    model, _ = exported(tmp_path, None)  # LVBertModel: the encoder
    inputs = padded_inputs()
    explanation = torch._dynamo.explain(model)(**inputs)
    assert explanation.graph_break_count == 0, explanation.break_reasons


def test_fill_mask_truncates_a_long_input(tmp_path: Path) -> None:
    from transformers import pipeline

    from nasplug.text.tokenizer import train_tokenizer, with_max_length

    model, folder = exported(tmp_path, "mlm")
    tokenizer = with_max_length(train_tokenizer(["word " * 30, "other words here"] * 40, 120, tmp_path / "tok"), 64)
    fill = pipeline("fill-mask", model=model, tokenizer=tokenizer)
    text = " ".join(["word"] * 10 + [tokenizer.mask_token] + ["word"] * 389)  # 400 tokens
    assert len(tokenizer(text)["input_ids"]) > 64 and tokenizer.model_max_length == 64
    out = fill(text, tokenizer_kwargs={"truncation": True})  # cut to model_max_length, not an error
    assert out and all("score" in o for o in out)


@pytest.mark.parametrize("tuned", [True, False])
def test_the_card_has_glue_scores_only_for_the_weights_glue_fine_tuned(tmp_path: Path, tuned: bool) -> None:
    """The GLUE stage fine-tunes the first seed's weights: another seed's card must not show them."""
    space = LVBertSpace(**SPACE)
    model = space.build(space.parse("CAFA"), head="mlm", seed=0).eval()
    glue = tmp_path / "run" / "glue" / "found"
    glue.mkdir(parents=True)
    (glue / "MRPC.json").write_text(json.dumps({"median": {"accuracy": 0.7123}}))
    folder = tmp_path / "out"
    folder.mkdir()
    facts = {"model": "found", "arch": "CAFA", "run_dir": str(tmp_path / "run"), "glue_tuned": tuned}
    space.export_model(model, space.parse("CAFA"), folder, facts)
    card = (folder / "README.md").read_text()
    assert ("| MRPC accuracy | 0.71 |" in card) is tuned
    assert ("GLUE dev" in card) is tuned


def test_the_card_of_an_exported_run_parses_and_its_model_index_holds_the_figures(tiny_run: Path,
                                                                                    tmp_path: Path) -> None:
    """ModelCard.load reads the card; its model-index holds the held-out MLM figures of
    result.json and every GLUE dev figure of glue/found/<TASK>.json; export.json says only
    what is true; every file is 0644 and the folder 0755 (umask 022)."""
    from huggingface_hub import ModelCard

    old = os.umask(0o022)
    try:
        out = tmp_path / "exported"
        done = subprocess.run([sys.executable, "-m", "nasplug", "-q", "export", str(tiny_run), "--out", str(out)],
                              capture_output=True, text=True)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    card = ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == "apache-2.0" and data["language"] == ["en"] and data["library_name"] == "transformers"
    assert "nasplug" in data["tags"] and "datasets" not in data, "the synthetic corpus is no Hub dataset"
    assert "[nasplug](https://nasplug.example/)" in card.text, "the project's URL from pyproject.toml"
    results = {(r.dataset_type, r.dataset_config, r.metric_name): r.metric_value for r in card.data.eval_results}
    heldout = json.loads((tiny_run / "retrain" / "found" / "result.json").read_text())["heldout"]
    for name in ("heldout_mlm_acc", "heldout_mlm_loss"):
        assert results[("held-out", None, name)] == heldout[name]
    glue = {p.stem: json.loads(p.read_text())["median"] for p in (tiny_run / "glue" / "found").glob("*.json")
            if p.stem != "scores"}
    assert set(glue) == {"RTE", "STS-B"}
    for task, median in glue.items():
        for metric, value in median.items():
            assert results[("nyu-mll/glue", task.lower().replace("-", ""), f"{metric} (%)")] == value
    assert len(results) == 2 + sum(len(m) for m in glue.values())
    facts = json.loads((out / "export.json").read_text())
    assert facts["glue_tuned"] is True and facts["corpus"] == "nasplug's generated English-like text"
    assert (out / "vocab.txt").is_file()
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "BertTokenizerFast"
    assert out.stat().st_mode & 0o777 == 0o755
    assert {oct(p.stat().st_mode & 0o777) for p in out.iterdir()} == {"0o644"}
