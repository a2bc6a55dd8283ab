"""Fuzz cases: well-formed recipes with bad settings (unknown keys, wrong types, booleans,
huge and non-positive numbers, unknown names, code paths, names that become paths, arch
strings)."""

from __future__ import annotations

from cases_base import RECIPE, TOY_TEXT, Case, dump, numbered, recipe_case, tiny, toy


def recipe_unknown_key() -> list[Case]:
    """Keys the recipe does not know, at every level: refused naming the key, before any
    training (the LV-BERT ones would otherwise train the supernet first)."""
    toys = [
        (toy(nmae="x"), r"nmae"),
        (toy(**{"search.budgt": 5}), r"budgt"),
        (toy(**{"search.strategy.popsize": 5}), r"popsize"),
        (toy(**{"space.slotz": 5}), r"slotz"),
        (toy(**{"evaluator.nois": 0.1}), r"nois"),
        (toy(**{"search.constraints": [{"name": "max_metric", "metrc": "params", "limit": 1}]}), r"metrc"),
        (toy(**{"search.strategy": {"name": "random", "populaton": 4}}), r"populaton"),
    ]
    tinies = [
        (tiny(**{"supernet.stepz": 5}), r"stepz"),
        (tiny(**{"task.corpuz": {}}), r"corpuz"),
        (tiny(**{"retrain.stepz": 5}), r"stepz"),
        (tiny(**{"glue.epochz": 1}), r"epochz"),
        (tiny(**{"evaluator.batchez": 2}), r"batchez"),
        (tiny(**{"task.tokenizer.vocab_sise": 320}), r"vocab_sise"),
        (tiny(**{"search.strategy.popsize": 6}), r"popsize"),
    ]
    return numbered("recipe-unknown-key", toys + tinies, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_wrong_type() -> list[Case]:
    """Values of the wrong type (strings for numbers, lists for mappings, ...)."""
    items = [
        (toy(name=123), r"name"),
        (toy(name=["a"]), r"name"),
        (toy(seed="abc"), r"seed"),
        (toy(seed=1.5), r"seed"),
        (toy(**{"search.budget": "100"}), r"budget"),
        (toy(**{"search.budget": 1.5}), r"budget"),
        (toy(**{"search.budget": [1]}), r"budget"),
        (toy(**{"search.metric": 5}), r"metric"),
        (toy(**{"search.direction": "up"}), r"direction"),
        (toy(space="toy"), r"space"),
        (toy(space=["toy"]), r"space"),
        (toy(search=5), r"search"),
        (toy(**{"search.constraints": {"a": 1}}), r"constraints"),
        (toy(evaluator=3), r"evaluator"),
        (toy(**{"space.seed": "x"}), r"seed"),
        (toy(**{"search.strategy.mutation_prob": "high"}), r"mutation_prob"),
        (toy(description=[1, 2]), r"description"),
        (toy(**{"search.strategy": "evolution"}), r"strategy"),
        (toy(**{"space.name": 5}), r"name"),
        (toy(**{"search.metric": "no_such_metric"}), r"metric"),
        (tiny(**{"supernet.lr": "fast"}), r"lr"),
        (tiny(**{"task.seq_len": "32"}), r"seq_len"),
        (tiny(**{"retrain.baselines": ["a", "b"]}), r"baselines"),
        (tiny(**{"glue.tasks": "RTE"}), r"tasks"),
        (tiny(**{"space.hidden": "32"}), r"hidden"),
        (tiny(**{"glue.tasks": ["NOPE"]}), r"NOPE"),
    ]
    return numbered("recipe-wrong-type", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_bool() -> list[Case]:
    """Booleans where numbers belong (YAML's true would otherwise be taken as 1)."""
    items = [
        (toy(**{"search.budget": True}), r"budget"),
        (toy(**{"search.batch_size": True}), r"batch_size"),
        (toy(**{"search.top_k": True}), r"top_k"),
        (toy(seed=True), r"seed"),
        (toy(seed=False), r"seed"),
        (toy(**{"space.slots": True}), r"slots"),
        (toy(**{"space.seed": False}), r"seed"),
        (toy(**{"space.width": True}), r"width"),
        (toy(**{"search.strategy.population": True}), r"population"),
        (toy(**{"search.strategy.parents": True}), r"parents"),
        (toy(**{"search.strategy.mutation_prob": True}), r"mutation_prob"),
        (toy(**{"search.strategy.generations": True}), r"generations"),
        (toy(**{"evaluator.noise": True}), r"noise"),
        (tiny(**{"supernet.steps": True}), r"steps"),
        (tiny(**{"supernet.batch_size": True}), r"batch_size"),
        (tiny(**{"supernet.lr": True}), r"lr"),
        (tiny(**{"evaluator.batches": True}), r"batches"),
        (tiny(**{"evaluator.batch_size": True}), r"batch_size"),
        (tiny(**{"task.seq_len": True}), r"seq_len"),
        (tiny(**{"space.hidden": True}), r"hidden"),
        (tiny(**{"space.slots": True}), r"slots"),
        (tiny(**{"space.vocab_size": True}), r"vocab_size"),
        (tiny(**{"retrain.steps": True}), r"steps"),
        (tiny(**{"glue.epochs": True}), r"epochs"),
        (tiny(**{"glue.seeds": [True]}), r"seeds"),
    ]
    return numbered("recipe-bool", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_huge() -> list[Case]:
    """Huge integers (100 and 5000 digits) and huge sizes, budgets and populations: refused
    with the limit in the message, never a ValueError, an allocation failure or a hang."""
    d100 = int("9" * 100)
    texts = [
        (TOY_TEXT.replace("budget: 30", f"budget: {d100}"), r"budget"),
        (TOY_TEXT.replace("budget: 30", "budget: " + "9" * 5000), r"budget|r\.yaml"),
        (TOY_TEXT.replace("seed: 0\nspace", f"seed: {d100}\nspace"), r"seed"),
        (TOY_TEXT.replace("seed: 0\nspace", "seed: " + "9" * 5000 + "\nspace"), r"seed|r\.yaml"),
        (TOY_TEXT.replace("slots: 8", f"slots: {d100}"), r"slots"),
        (TOY_TEXT.replace("population: 10", f"population: {10**18}"), r"population"),
        (TOY_TEXT.replace("population: 10", f"population: {d100}"), r"population"),
        (TOY_TEXT.replace("budget: 30", f"budget: {10**18}"), r"budget"),
        (TOY_TEXT.replace("parents: 3", f"parents: {10**18}"), r"parents"),
        (TOY_TEXT.replace("generations: 20", f"generations: {d100}"), r"generations"),
        (TOY_TEXT.replace("top_k: 5", f"top_k: {d100}"), r"top_k"),
        (TOY_TEXT.replace("batch_size: 10", f"batch_size: {d100}"), r"batch_size"),
    ]
    assert all(text != TOY_TEXT for text, _ in texts)
    tinies = [
        (tiny(**{"space.hidden": 10**12}), r"hidden"),
        (tiny(**{"space.slots": 10**6}), r"slots"),
        (tiny(**{"space.vocab_size": 10**12}), r"vocab_size"),
        (tiny(**{"space.max_positions": 10**12}), r"max_positions"),
        (tiny(**{"space.ffn": 10**12}), r"ffn"),
        (tiny(**{"space.embedding": 10**12}), r"embedding"),
        (tiny(**{"space.seq_len": 10**12}), r"seq_len"),
        (tiny(**{"task.seq_len": 10**12}), r"seq_len"),
        (tiny(**{"task.tokenizer.vocab_size": 10**12}), r"vocab_size"),
        (tiny(**{"supernet.steps": 10**18}), r"steps"),
        (tiny(**{"supernet.batch_size": 10**12}), r"batch_size"),
        (tiny(**{"evaluator.batches": 10**18}), r"batches"),
        (tiny(**{"evaluator.batch_size": 10**12}), r"batch_size"),
        (tiny(**{"retrain.steps": 10**18}), r"steps"),
        (tiny(**{"glue.epochs": 10**12}), r"epochs"),
        (tiny(**{"glue.max_len": 10**12}), r"max_len"),
        (tiny(**{"space.hidden": int("3" * 100)}), r"hidden"),
    ]
    cases = numbered("recipe-huge", texts, lambda cid, text, names: recipe_case(cid, text, names))
    cases += numbered("recipe-huge-size", tinies, lambda cid, raw, names: recipe_case(cid, raw, names))
    return cases


def recipe_nonpositive() -> list[Case]:
    """Zero and negative sizes, budgets, batches and steps."""
    items = [
        (toy(**{"search.budget": 0}), r"budget"),
        (toy(**{"search.budget": -1}), r"budget"),
        (toy(**{"search.batch_size": 0}), r"batch_size"),
        (toy(**{"search.batch_size": -5}), r"batch_size"),
        (toy(**{"search.top_k": 0}), r"top_k"),
        (toy(**{"space.slots": 0}), r"slots"),
        (toy(**{"space.slots": -1}), r"slots"),
        (toy(**{"space.width": 0}), r"width"),
        (toy(**{"search.strategy.population": 0}), r"population"),
        (toy(**{"search.strategy.population": -1}), r"population"),
        (toy(**{"search.strategy.parents": 0}), r"parents"),
        (toy(**{"search.strategy.mutation_prob": -0.5}), r"mutation_prob"),
        (tiny(**{"evaluator.batches": 0}), r"batches"),
        (tiny(**{"evaluator.batches": -1}), r"batches"),
        (tiny(**{"evaluator.batch_size": 0}), r"batch_size"),
        (tiny(**{"supernet.steps": 0}), r"steps"),
        (tiny(**{"supernet.steps": -1}), r"steps"),
        (tiny(**{"supernet.batch_size": 0}), r"batch_size"),
        (tiny(**{"space.hidden": 0}), r"hidden"),
        (tiny(**{"space.hidden": -32}), r"hidden"),
        (tiny(**{"space.vocab_size": 0}), r"vocab_size"),
        (tiny(**{"task.seq_len": 0}), r"seq_len"),
        (tiny(**{"task.seq_len": -1}), r"seq_len"),
        (tiny(**{"retrain.steps": 0}), r"steps"),
        (tiny(**{"glue.epochs": 0}), r"epochs"),
        (tiny(**{"glue.seeds": []}), r"seeds"),
        (tiny(**{"retrain.seeds": []}), r"seeds"),
    ]
    return numbered("recipe-nonpositive", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_unknown_name() -> list[Case]:
    """Names that resolve to nothing: unknown registry names, missing modules and attributes."""
    items = [
        (toy(**{"space.name": "nosuch"}), r"nosuch"),
        (toy(**{"search.strategy.name": "evolutin"}), r"evolutin"),
        (toy(**{"evaluator.name": "nope"}), r"nope"),
        (toy(**{"search.constraints": [{"name": "nope_constraint"}]}), r"nope_constraint"),
        (toy(**{"space.name": "nosuch_module_xyz:Space"}), r"nosuch_module_xyz"),
        (toy(**{"space.name": "os:nosuchattr"}), r"nosuchattr"),
        (toy(**{"space.name": "nasplug:"}), r"nasplug:"),
        (toy(**{"space.name": ":Space"}), r":Space"),
        (toy(**{"space.name": ""}), r"space"),
        (tiny(**{"task.name": "nope_task"}), r"nope_task"),
        (tiny(**{"supernet.sampler": "nope_sampler"}), r"nope_sampler"),
    ]
    return numbered("recipe-unknown-name", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_code() -> list[Case]:
    """``module:attr`` paths to things that are not plugins (os:system, builtins:eval,
    subprocess:Popen, open, ...): refused before anything is called; the marker file a
    called path would create must not exist."""
    marker = "@MARKER@"
    touch = f"touch {marker}"
    items = [
        (toy(space={"name": "os:system", "command": touch}), r"space.*os:system|os:system"),
        (toy(evaluator={"name": "os:system", "command": touch}), r"os:system"),
        (toy(**{"search.strategy": {"name": "os:system", "command": touch}}), r"os:system"),
        (toy(**{"search.constraints": [{"name": "os:system", "command": touch}]}), r"os:system"),
        (toy(evaluator={"name": "subprocess:Popen", "args": ["touch", marker]}), r"subprocess:Popen"),
        (toy(evaluator={"name": "subprocess:run", "args": ["touch", marker]}), r"subprocess:run"),
        (toy(space={"name": "builtins:open", "file": marker, "mode": "w"}), r"builtins:open"),
        (toy(space={"name": "io:open", "file": marker, "mode": "w"}), r"io:open"),
        (toy(evaluator={"name": "builtins:exec", "source": f"open({marker!r}, 'w')"}), r"builtins:exec"),
        (toy(evaluator={"name": "builtins:eval", "source": f"open({marker!r}, 'w')"}), r"builtins:eval"),
        (toy(space={"name": "nasplug.io:atomic_write_text", "path": marker, "text": "x"}), r"atomic_write_text"),
        (toy(space={"name": "pathlib:Path.touch", "self": marker}), r"Path\.touch"),
        (tiny(task={"name": "os:system", "command": touch}), r"os:system"),
        (toy(space={"name": "posix:system", "command": touch}), r"posix:system"),
        (toy(space={"name": "shutil:copyfile", "src": "@TOY@", "dst": marker}), r"shutil:copyfile"),
    ]
    return numbered("recipe-code", items, lambda cid, raw, names: recipe_case(cid, raw, names, marker=True))


def recipe_path_names() -> list[Case]:
    """Names that become folder names: the recipe's name (default --out runs/<name>), baseline
    and init_from names: nothing may be written outside runs/ (or anywhere: refused)."""
    no_out = ("-q", "run", RECIPE)
    items = [
        (toy(name="../../escape"), r"name"),
        (toy(name="../../../escape"), r"name"),
        (toy(name="@CASE@/absolute"), r"name"),
        (toy(name=".."), r"name"),
        (toy(name=""), r"name"),
        (toy(name="a/../../../b"), r"name"),
    ]
    cases = numbered(
        "path-name", items, lambda cid, raw, names: Case(cid, no_out, names, files=(("r.yaml", dump(raw)),))
    )
    cases.append(Case("path-name-6", ("-q", "run", "@TOY@", "--set", "name=../../x"), r"name"))
    cases.append(
        Case(
            "path-name-7",
            ("-q", "compare", RECIPE, "--strategies", "random", "--seeds", "1", "--budget", "3"),
            r"name",
            files=(("r.yaml", dump(toy(name="../../../cmp"))),),
        )
    )
    baselines = [
        (tiny(**{"retrain.baselines": {"../evil": "interleaved"}}), r"evil"),
        (tiny(**{"retrain.baselines": {"@CASE@/abs": "interleaved"}}), r"abs"),
        (tiny(**{"retrain.baselines": {"..": "interleaved"}}), r"baselines"),
        (tiny(**{"retrain.baselines": {"a/b": "interleaved"}}), r"baselines"),
        (tiny(**{"retrain.baselines": {"": "interleaved"}}), r"baselines"),
        (tiny(**{"glue.init_from": {"../evil": "@CASE@/nowhere"}}), r"evil|init_from"),
    ]
    cases += numbered("path-baseline", baselines, lambda cid, raw, names: recipe_case(cid, raw, names))
    return cases


def arch_strings() -> list[Case]:
    """Bad architecture strings: the recipe's fixed ``arch`` and baselines."""
    toys = ["", "skip", ",".join(["foo"] * 8), "{", '{"s0": "skip"}', "[1,2]", "skip," * 10000, "skip,linear,,,,,,",
            "\x00" * 8]
    cases = numbered("arch-toy", toys, lambda cid, text: recipe_case(cid, toy(arch=text), r"arch"))
    tinies = ["XYZ", "CC", "CCCC", "[0,1,7]", "[", "ZZZ", "C" * 5000, "interleaved2", "ÄÖÜ", "[-1,0,0]",
              '{"L00": "conv", "L01": "conv", "L02": "nope"}']
    cases += numbered("arch-tiny", tinies, lambda cid, text: recipe_case(cid, tiny(arch=text), r"arch"))
    baselines = ["QQQ", "", "C" * 5000, "[0,1]", "{}"]
    cases += numbered("arch-baseline", baselines,
                      lambda cid, text: recipe_case(cid, tiny(**{"retrain.baselines": {"b": text}}), r"baselines"))
    return cases


def recipe_snapshots() -> list[Case]:
    """``supernet.snapshots`` (issue 25): steps outside the training, repeated, of the wrong type,
    with a few-shot split; and the zero-cost evaluators' settings."""
    items = [
        (tiny(**{"supernet.snapshots": [0]}), r"supernet\.snapshots: step 0"),
        (tiny(**{"supernet.snapshots": [25]}), r"supernet\.snapshots: step 25"),
        (tiny(**{"supernet.snapshots": [-3]}), r"supernet\.snapshots"),
        (tiny(**{"supernet.snapshots": [4, 4]}), r"supernet\.snapshots: .*twice"),
        (tiny(**{"supernet.snapshots": ["4"]}), r"supernet\.snapshots"),
        (tiny(**{"supernet.snapshots": [True]}), r"supernet\.snapshots"),
        (tiny(**{"supernet.snapshots": 4}), r"supernet\.snapshots"),
        (tiny(**{"supernet.snapshots": list(range(1, 1200))}), r"supernet\.snapshots"),
        (tiny(**{"supernet.snapshots": [4], "supernet.split": {"choice": "L00"}}), r"supernet\.snapshots"),
        (toy(**{"evaluator": {"name": "synflow", "batch_size": 1}}), r"evaluator\.batch_size"),
        (toy(**{"evaluator": {"name": "snip", "batch_seed": -1}}), r"evaluator\.batch_seed"),
        (toy(**{"evaluator": {"name": "jacov", "device": "tpu"}}), r"evaluator\.device"),
        (toy(**{"evaluator": {"name": "grad_norm", "colour": 1}}), r"colour"),
        (tiny(**{"evaluator": {"name": "synflow"}, "search.direction": "minimize", "search.metric": "synflow"}),
         r"search\.direction: synflow"),
        (tiny(**{"evaluator": {"name": "grad_norm"}}), r"search\.metric: 'mlm_acc'"),
    ]
    return numbered("recipe-snapshots", items, lambda cid, raw, names: recipe_case(cid, raw, names))


def recipe_rank_corr() -> list[Case]:
    """The ``rank_corr:`` section (issue 25): refused naming the key before anything trains."""
    good = {"archs": 3, "steps": 2}
    items = [
        (tiny(rank_corr=5), r"rank_corr"),
        (tiny(rank_corr={"steps": 2}), r"rank_corr\.archs: required"),
        (tiny(rank_corr={**good, "archs": 2}), r"rank_corr\.archs"),
        (tiny(rank_corr={**good, "archs": True}), r"rank_corr\.archs"),
        (tiny(rank_corr={**good, "steps": 0}), r"rank_corr\.steps"),
        (tiny(rank_corr={**good, "seeds": 0}), r"rank_corr\.seeds"),
        (tiny(rank_corr={**good, "seeds": "2"}), r"rank_corr\.seeds"),
        (tiny(rank_corr={**good, "jobs": 0}), r"rank_corr\.jobs"),
        (tiny(rank_corr={**good, "predictors": "params"}), r"rank_corr\.predictors"),
        (tiny(rank_corr={**good, "predictors": ["nope"]}), r"rank_corr\.predictors: 'nope'"),
        (tiny(rank_corr={**good, "predictors": ["short:2"]}), r"rank_corr\.predictors: 'short:2'"),
        (tiny(rank_corr={**good, "stratify": "mlm_acc"}), r"rank_corr\.stratify: 'mlm_acc'"),
        (tiny(rank_corr={**good, "metric": "disc_acc"}), r"rank_corr\.metric: 'disc_acc'"),
        (tiny(rank_corr={**good, "checkpoints": True}), r"rank_corr\.checkpoints"),
        (tiny(rank_corr={**good, "resamples": 5}), r"rank_corr\.resamples"),
        (tiny(rank_corr={**good, "batches": 0}), r"rank_corr\.batches|evaluator\.batches"),
        (tiny(rank_corr={**good, "colour": "red"}), r"rank_corr\.colour: unknown key"),
    ]
    return numbered("recipe-rankcorr", items, lambda cid, raw, names: recipe_case(cid, raw, names))
