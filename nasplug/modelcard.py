"""Model cards (``README.md`` of an exported folder) through ``huggingface_hub``.

The metadata block is a :class:`huggingface_hub.ModelCardData`: license, language, datasets,
tags, the base model where a model was imported, and a ``model-index`` with the model's
figures (:class:`Figure`: held-out pre-training figures, GLUE dev scores), which the Hub and
``ModelCard.load`` parse. The body is what a space writes about its models. The link to
nasplug is the project's URL in ``pyproject.toml`` (``[project.urls]``), read from the
installed package's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

from nasplug.io import atomic_write_text


@dataclass(frozen=True)
class Figure:
    """One result of the model on one dataset (an entry of the card's ``model-index``)."""

    task_type: str  # a Hub task: "fill-mask", "text-classification", ...
    dataset_type: str  # a Hub dataset id where there is one ("nyu-mll/glue"), else a short name
    dataset_name: str  # what a reader sees ("GLUE MRPC", "held-out split of the corpus")
    metric_type: str  # "accuracy", "f1", "matthews_correlation", "spearmanr", ...
    value: float
    metric_name: str | None = None
    dataset_config: str | None = None
    dataset_split: str | None = None


def project_url() -> str | None:
    """nasplug's URL from ``[project.urls]`` (the first of Homepage, Repository, Source)."""
    try:
        entries = metadata("nasplug").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    urls = {label.strip().lower(): url.strip() for label, _, url in (e.partition(",") for e in entries)}
    return next((urls[k] for k in ("homepage", "repository", "source") if k in urls), None)


def write_model_card(folder: str | Path, *, model_name: str, body: str, license: str, tags: Sequence[str],
                     pipeline_tag: str | None, language: Sequence[str] = (), datasets: Sequence[str] = (),
                     base_model: str | None = None, figures: Sequence[Figure] = ()) -> Path:
    """Write ``folder/README.md`` (atomically): the metadata block, then ``body`` (Markdown)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = [EvalResult(task_type=f.task_type, dataset_type=f.dataset_type, dataset_name=f.dataset_name,
                          metric_type=f.metric_type, metric_value=f.value, metric_name=f.metric_name,
                          dataset_config=f.dataset_config, dataset_split=f.dataset_split) for f in figures]
    data = ModelCardData(model_name=model_name, license=license, library_name="transformers", tags=list(tags),
                         pipeline_tag=pipeline_tag, language=list(language) or None, datasets=list(datasets) or None,
                         base_model=base_model, eval_results=results or None)
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body.strip()}\n")
    return atomic_write_text(Path(folder) / "README.md", str(card))
