"""Exported elastic-BERT folders load in a *fresh* virtual environment without nasplug.

The test suite checks the same in a process that blocks nasplug's import; this script uses a
real second environment (only torch, transformers and safetensors installed), made once with::

    python3 -m venv /tmp/fresh && /tmp/fresh/bin/pip install torch==2.13.0 transformers safetensors
    .venv/bin/python tests/spaces/check_fresh_venv.py /tmp/fresh/bin/python

For a uniform arch (a plain ``BertForMaskedLM``) and a per-layer one (the folder's own code),
it exports the model extracted from a supernet with trained-like weights, loads it with
``AutoModelForMaskedLM`` in the fresh environment and prints the largest difference from the
routed supernet's logits (it must be <= 1e-5). Exit status 1 otherwise.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from nasplug.oneshot.checkpoint import save_weights
from nasplug.spaces.elastic_bert import ElasticBertSpace
from nasplug.testing import randomize_state

LOAD = """
import sys, torch, transformers
try:
    import nasplug
    sys.exit("nasplug is importable here: not a fresh environment")
except ImportError:
    pass
model = transformers.AutoModelForMaskedLM.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
with torch.no_grad():
    torch.save(model(**torch.load(sys.argv[1] + "/inputs.pt")).logits, sys.argv[1] + "/logits.pt")
print(type(model).__module__ + "." + type(model).__name__, "transformers", transformers.__version__)
"""


def main(python: str) -> int:
    space = ElasticBertSpace(layers=4, hidden=(32, 64), heads=(2, 4), ffn=(64, 128), head_size=16, vocab_size=500,
                             seq_len=32)
    supernet = space.build_supernet(seed=0)
    randomize_state(supernet, 1)
    supernet.eval()
    ids, mask, types = supernet.example_input(batch=3, seed=4)
    worst = 0.0
    for text in ("d4 h64 a4.4.4.4 f128.128.128.128", "d3 h64 a2.4.2 f64.128.128"):
        arch = space.parse(text)
        with torch.no_grad(), supernet.using(arch):
            want = supernet.masked_logits(supernet(ids, mask, types), None)
        folder = Path(tempfile.mkdtemp(prefix="elastic-bert-export-"))
        model = supernet.extract(arch, head="mlm").eval()
        save_weights(model, folder / "model.safetensors")
        space.export_model(model, arch, folder, {"arch": text})
        torch.save({"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, folder / "inputs.pt")
        done = subprocess.run([python, "-c", LOAD, str(folder)], capture_output=True, text=True, cwd=folder,
                              env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            return 1
        diff = float((torch.load(folder / "logits.pt") - want).abs().max())
        worst = max(worst, diff)
        print(f"{text:38s} {done.stdout.strip():70s} max |diff| {diff:.3g}")
    return 0 if worst <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
