"""nasplug: neural architecture search with pluggable spaces, tasks and strategies.

The concepts (``nasplug.arch``, ``space``, ``supernet``, ``task``, ``strategy``,
``evaluate``, ``search``) are plain modules; importing ``nasplug`` itself imports nothing heavy.

Glossary: one name per quantity
===============================

The code names each quantity with one of these words, and a word never names another
quantity. A recipe key or CLI flag that is older than this list keeps its spelling (it is
stored in every run's ``recipe.yaml``, in checkpoints and in comparison fingerprints, so a
new spelling would break resuming them) and is read under its glossary name in exactly one
place, listed in the second table.

=================  ==========================================================================
name               quantity
=================  ==========================================================================
``arch``           one architecture: ``dict`` choice -> option; ``archs``: a list of them
``batch``          one batch of examples (a tuple of tensors, a ``MaskedBatch``, ...)
``batches``        a list (or iterator) of batches, never a count
``num_batches``    a count of batches (``num_<things>`` is always a count)
``batch_size``     examples (rows) per batch; in training the *global* batch, all processes
                   and micro-batches together; never a number of archs
``micro-batch``    one process's slice of a global batch (``grad_accum`` of them per step)
``archs_per_ask``  archs asked per ``Strategy.ask`` and evaluated together
``ask``            one call of ``Strategy.ask``; ``trials.jsonl`` stores its number as
                   ``batch`` and its ``archs_per_ask`` as ``asked`` (stored keys)
``budget``         scored trials of a search (evaluated, or answered from the cache)
``step``           one optimizer step; ``steps``: how many
``trial``          one proposed arch as logged: ``ok``, ``cached``, ``rejected`` or ``failed``
``metrics``        ``dict`` name -> value an evaluator returns; ``metric``: one name of them
``score``          a trial's value of the search's metric (the first objective), in the
                   metric's own units
``objective``      a metric the search optimises plus its direction (``Objective``);
                   ``objectives``: one or more of them, in the recipe's order
``values``         one value per objective, in the metrics' own units (what a
                   ``vector_tell`` strategy is told)
``front``          the non-dominated distinct scored trials of a search (``pareto.json``)
``front models``   the retrained archs of a front (``retrain.pareto``: ``pareto-<i>``, and
                   ``found`` when it is on the front)
``latency_ms``     milliseconds per forward call of one batch on a named device (measured, or
                   predicted by a latency table: each option at each position, plus a constant)
``keep``           archs whose hidden states the evaluator keeps between calls
``memory_hint``    archs a strategy builds its next proposals on (``Strategy.memory_hint``)
``seed``           an explicit seed (``random.Random`` / ``torch.Generator``); no global RNG
``snapshot``       the weights a training keeps after a chosen step (``supernet.snapshots``)
``num_seeds``      how many seeded standalone trainings of one arch rank-corr compares (K)
=================  ==========================================================================

=============================  ===============================  ======================================
recipe key / flag / file key   read as                          the one place
=============================  ===============================  ======================================
``evaluator.batches``          ``num_batches``                  ``SupernetEvaluator.__init__``
``evaluator.recalibrate``      ``num_recalibrate_batches``      ``SupernetEvaluator.__init__``
``rank-corr --batches``        ``num_batches``                  ``rankcorr/cli.py`` (the bound: the
                                                                evaluator's ``batches`` hint)
``supernet|retrain.``          ``num_batches`` of the held-out  ``_Run.__init__`` of
``eval_batches``               figures during training          (``oneshot/train.py``)
``search.batch_size``          ``archs_per_ask``                ``SearchConfig.archs_per_ask``
``compare --batch-size``       ``archs_per_ask``                ``plan_comparison`` (compare/plan.py)
``latency-table --batch``      ``batch_size`` (sequences per    ``add_latency_parsers``
                               forward call)                    (cost/cli.py)
``rank_corr.json``             the count of held-out batches    written by ``rank_correlation``
``heldout_batches``            both scores used                 (an output key)
``rank-corr --seeds``,         ``num_seeds``                    the parser's ``dest`` (rankcorr/cli.py)
``rank_corr.seeds``                                             and ``RankCorrConfig``'s alias
                                                                (rankcorr/stage.py)
=============================  ===============================  ======================================
"""

__version__ = "0.2.0"
