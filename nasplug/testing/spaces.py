"""Contract suites for search spaces and supernets (extract equals routed, canonical models)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from nasplug.arch import Arch, arch_from_json, arch_key, arch_to_json
from nasplug.errors import NasplugError
from nasplug.space import SearchSpace

#: Spaces with at most this many arch names have their models counted by brute force.
BRUTE_FORCE_LIMIT = 50_000


class SpaceContract:
    """Promises every SearchSpace keeps. Provide a ``space`` fixture."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        raise NotImplementedError("define a `space` fixture returning the space under test")

    def test_choices_are_named_and_nonempty(self, space: SearchSpace) -> None:
        choices = space.choices()
        assert choices, "a space needs at least one choice"
        for key, options in choices.items():
            assert isinstance(key, str) and len(options) >= 1
            assert len(set(map(repr, options))) == len(options), f"choice {key} repeats an option"

    def test_samples_are_valid_and_seeded(self, space: SearchSpace) -> None:
        first = [space.sample(random.Random(7)) for _ in range(5)]
        again = [space.sample(random.Random(7)) for _ in range(5)]
        assert [arch_key(a) for a in first] == [arch_key(a) for a in again], "same seed must give the same samples"
        for arch in first:
            assert space.validate(arch) == arch

    def test_validate_names_the_problem(self, space: SearchSpace) -> None:
        arch = space.sample(random.Random(0))
        key = next(iter(arch))
        missing = {k: v for k, v in arch.items() if k != key}
        with pytest.raises(NasplugError, match=key):
            space.validate(missing)
        with pytest.raises(NasplugError, match="no_such_choice"):
            space.validate({**arch, "no_such_choice": 1})
        with pytest.raises(NasplugError, match=key):
            space.validate({**arch, key: "__not_an_option__"})

    def test_mutate_and_crossover_stay_in_the_choices(self, space: SearchSpace) -> None:
        rng = random.Random(1)
        a, b = space.sample(rng), space.sample(rng)
        for child in (space.mutate(a, rng, 0.5), space.crossover(a, b, rng)):
            assert set(child) == set(space.choices())
            for key, value in child.items():
                assert value in space.choices()[key]
        assert space.mutate(a, rng, 0.0) == a, "mutation with p=0 must not change the arch"

    def test_arch_text_round_trips(self, space: SearchSpace) -> None:
        arch = space.sample(random.Random(2))
        assert arch_from_json(arch_to_json(arch)) == arch
        assert space.parse(space.format(arch)) == arch

    def test_size_counts_the_models(self, space: SearchSpace) -> None:
        total = 1
        for options in space.choices().values():
            total *= len(options)
        if not space.conditions():
            assert space.size() == total
        elif total <= BRUTE_FORCE_LIMIT:
            distinct = {arch_key(space.canonical(dict(zip(space.choices(), values))))
                        for values in itertools.product(*space.choices().values())}
            assert space.size() == len(distinct), "size() must count distinct models (canonical archs)"
        else:
            pytest.skip(f"{total:,} arch names: too many to count by brute force")

    def test_canonical_names_one_model_once(self, space: SearchSpace) -> None:
        rng = random.Random(3)
        choices = space.choices()
        for _ in range(20):
            raw = {key: rng.choice(list(options)) for key, options in choices.items()}
            once = space.canonical(raw)
            assert set(once) == set(choices) and space.canonical(once) == once, "canonical() must be idempotent"
        a, b = space.sample(rng), space.sample(rng)
        for arch in (a, space.mutate(a, rng, 0.5), space.crossover(a, b, rng)):
            assert space.canonical(arch) == arch, "sample, mutate and crossover must return canonical archs"

    def test_one_canonical_form_builds_one_model(self, space: SearchSpace) -> None:
        if not space.conditions():
            pytest.skip("space has no conditional choices")
        try:
            space.build_supernet()
        except NotImplementedError:
            pytest.skip("space has no supernet")
        check_canonical_models(space)

    def test_supernet_extract_matches_routed_forward(self, space: SearchSpace) -> None:
        try:
            space.build_supernet()
        except NotImplementedError:
            pytest.skip("space has no supernet")
        check_extract_matches(space)


def archs_covering_every_option(space: SearchSpace, seed: int = 0, tries: int = 500) -> list[Arch]:
    """Valid archs such that every option of every choice appears in at least one (options
    the space's constraints exclude everywhere are left out)."""
    rng = random.Random(seed)
    archs: dict[str, Arch] = {}
    for key, options in space.choices().items():
        for option in options:
            arch = {**space.sample(rng), key: option}
            for _ in range(tries):
                if space.is_valid(arch):
                    archs.setdefault(arch_key(arch), arch)
                    break
                arch = space.sample(rng)
                if arch[key] != option:
                    arch = {**arch, key: option}
    return list(archs.values())


def randomize_state(module: Any, seed: int = 0) -> None:
    """Give every parameter and floating-point buffer random values (running variances stay
    positive), as training would: a supernet fresh from its constructor has BatchNorm
    statistics of 0 and 1 that a broken ``extract`` would reproduce by accident."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
        for name, buffer in module.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand(buffer.shape, generator=gen) + 0.5)
            elif name.endswith("num_batches_tracked"):
                buffer.fill_(7)


def check_extract_matches(space: SearchSpace, seed: int = 0) -> None:
    """``extract(arch)(x) == supernet.using(arch)(x)`` exactly, in eval mode, with trained-like
    (random) weights and buffers, for archs covering every option of every choice."""
    import torch

    supernet = space.build_supernet()
    randomize_state(supernet, seed)
    supernet.eval()
    for i, arch in enumerate(archs_covering_every_option(space, seed)):
        inputs = supernet.example_input(batch=2, seed=seed + i)
        with torch.no_grad(), supernet.using(arch):
            routed = supernet(*inputs)
        standalone = supernet.extract(arch).eval()
        with torch.no_grad():
            alone = standalone(*inputs)
        routed_t = routed if isinstance(routed, torch.Tensor) else routed[0]
        alone_t = alone if isinstance(alone, torch.Tensor) else getattr(alone, "last_hidden_state", alone[0])
        assert torch.equal(routed_t, alone_t), (
            f"extract(arch)(x) must equal supernet.using(arch)(x) exactly (weights and buffers, e.g. BatchNorm "
            f"statistics, included); they differ for {space.format(arch)} by "
            f"{(routed_t.float() - alone_t.float()).abs().max().item():.3g}")


def renamed(space: SearchSpace, arch: Arch, rng: random.Random) -> Arch:
    """``arch`` with every inactive choice redrawn: another name of the same model."""
    from nasplug.conditions import active

    flags = active(space, arch)
    return {key: value if flags[key] else rng.choice(list(space.choices()[key])) for key, value in arch.items()}


def check_canonical_models(space: SearchSpace, seed: int = 0, archs: int = 6) -> None:
    """Archs with one canonical form build one model: with trained-like (random) weights, the
    routed supernet and the extracted model give exactly the same output under every name."""
    import torch

    supernet = space.build_supernet()
    randomize_state(supernet, seed)
    supernet.eval()
    rng = random.Random(seed)
    for i in range(archs):
        arch = space.sample(rng)
        other = renamed(space, arch, rng)
        assert space.canonical(other) == arch, f"{space.format(other)} must have the canonical form {arch}"
        inputs = supernet.example_input(batch=2, seed=seed + i)
        outputs = []
        for name in (arch, other):
            with torch.no_grad(), supernet.using(name):
                routed = supernet(*inputs)
            alone = supernet.extract(name).eval()
            with torch.no_grad():
                outputs += [_first(routed), _first(alone(*inputs))]
        for out in outputs[1:]:
            assert torch.equal(outputs[0], out), (
                f"{space.format(arch)} and {space.format(other)} have one canonical form but build different models")


def _first(out: Any) -> Any:
    import torch

    if isinstance(out, torch.Tensor):
        return out
    hidden = getattr(out, "last_hidden_state", None)
    return out[0] if hidden is None else hidden
