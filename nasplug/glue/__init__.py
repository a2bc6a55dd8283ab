"""GLUE: task table, loading (local TSV folder or the hub), metrics, the two GLUE averages,
fine-tuning over seeds, and the GLUE server's submission files.

Typical use::

    from nasplug import glue
    data = glue.load_task("RTE", "../shared/data/glue")        # or source="hub"
    result = glue.finetune("RTE", factory, tokenizer, data, glue.FinetuneConfig(),
                           layer_index=glue.bert_layer_index(12))
    glue.glue_score({"RTE": result, ...}, convention="electra_dev")
    glue.write_submission(result["test_predictions"], "run/glue_submission")
"""

from __future__ import annotations

from nasplug.glue.data import HUB_DATASET, TaskData, load_glue, load_task, read_tsv
from nasplug.glue.finetune import (
    FinetuneConfig,
    LayerIndex,
    ModelFactory,
    bert_layer_index,
    finetune,
    param_groups,
)
from nasplug.glue.metrics import CONVENTIONS, compute_metrics, glue_score
from nasplug.glue.reference import (
    ELECTRA_BASE_DEV,
    ELECTRA_DEV_METRIC,
    ELECTRA_SMALL_DEV,
    ELECTRA_SMALL_OWT_DEV,
    REFERENCES,
    reference_results,
)
from nasplug.glue.submit import SUBMISSION_FILES, submission_names, write_submission
from nasplug.glue.tasks import (
    BENCHMARK_TASKS,
    TASK_NAMES,
    TASKS,
    TEST_SIZES,
    GlueTask,
    SplitLayout,
    get_task,
)

__all__ = [
    "BENCHMARK_TASKS", "CONVENTIONS", "ELECTRA_BASE_DEV", "ELECTRA_DEV_METRIC",
    "ELECTRA_SMALL_DEV", "ELECTRA_SMALL_OWT_DEV", "HUB_DATASET", "REFERENCES",
    "SUBMISSION_FILES", "TASKS", "TASK_NAMES", "TEST_SIZES", "FinetuneConfig", "GlueTask",
    "LayerIndex", "ModelFactory", "SplitLayout", "TaskData", "bert_layer_index",
    "compute_metrics", "finetune", "get_task", "glue_score", "load_glue", "load_task",
    "param_groups", "read_tsv", "reference_results", "submission_names", "write_submission",
]
