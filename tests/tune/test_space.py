"""Search spaces: parsing, validation errors that name the parameter, grids against itertools.product."""

from __future__ import annotations

import itertools

import pytest

from roost.tune.search_space import Space, SpaceError, point_key

SPACE = {
    "lr": {"loguniform": [1e-4, 1e-1]},
    "layers": {"int": [1, 4]},
    "hidden": {"choice": [[64], [128, 64]]},
    "model": {"type": {"choice": ["mlp", "logreg"]}},
    "dropout": {"uniform": [0.0, 0.5], "when": {"model.type": "mlp"}},
}


def test_parse_flattens_nested_names_and_keeps_order() -> None:
    sp = Space.parse(SPACE)
    assert [p.name for p in sp.params] == ["lr", "layers", "hidden", "model.type", "dropout"]
    assert sp.by_name["lr"].log and sp.by_name["layers"].kind == "int" and sp.conditional
    assert Space.parse(sp.to_spec()).to_spec() == sp.to_spec()  # canonical form round-trips


@pytest.mark.parametrize(
    "block, param, words",
    [
        ({"lr": {"logunifrom": [1e-4, 1e-1]}}, "lr", "loguniform"),
        ({"lr": {"loguniform": [0, 1]}}, "lr", "low > 0"),
        ({"n": {"int": [1.5, 4]}}, "n", "integers"),
        ({"a": {"uniform": [2, 1]}}, "a", "greater than"),
        ({"a": {"choice": []}}, "a", "non-empty"),
        ({"a": {"uniform": [0, 1], "when": {"b": 1}}}, "a", "earlier param"),
        ({"a": 3}, "a", "expected a distribution"),
    ],
)
def test_bad_spaces_name_the_parameter(block, param, words) -> None:
    with pytest.raises(SpaceError) as e:
        Space.parse(block)
    assert e.value.param == param
    assert words in str(e.value)


def test_validate_normalises_and_names_the_offender() -> None:
    sp = Space.parse(SPACE)
    ok = sp.validate({"lr": 0.01, "layers": 2.0, "hidden": [64], "model.type": "logreg"})
    assert ok == {"lr": 0.01, "layers": 2, "hidden": [64], "model.type": "logreg"}
    assert isinstance(ok["layers"], int)
    base = {"lr": 0.01, "layers": 2, "hidden": [64], "model.type": "mlp", "dropout": 0.1}
    assert sp.validate(base) == base
    cases = [
        ({**base, "lr": 0.5}, "lr"),
        ({**base, "layers": 2.5}, "layers"),
        ({**base, "hidden": [32]}, "hidden"),
        ({**base, "dropout": float("nan")}, "dropout"),
        ({**base, "lrr": 1}, "lrr"),
        ({k: v for k, v in base.items() if k != "dropout"}, "dropout"),
        ({**base, "model.type": "logreg"}, "dropout"),
        ({**base, "layers": True}, "layers"),
    ]
    for point, param in cases:
        with pytest.raises(SpaceError) as e:
            sp.validate(point)
        assert e.value.param == param, point


def test_grid_is_the_full_product() -> None:
    sp = Space.parse({"a": {"int": [1, 3]}, "b": ["x", "y"], "c": {"uniform": [0, 1], "step": 0.25}})
    expected = [
        {"a": a, "b": b, "c": c} for a, b, c in itertools.product([1, 2, 3], ["x", "y"], [0.0, 0.25, 0.5, 0.75, 1.0])
    ]
    got = sp.grid()
    assert sorted(map(point_key, got)) == sorted(map(point_key, expected))
    assert sp.grid_size() == 30


def test_conditional_grid_omits_inactive_params() -> None:
    sp = Space.parse({"kind": ["a", "b"], "x": {"int": [1, 3], "when": {"kind": "a"}}, "y": [True, False]})
    expected = [{"kind": "a", "x": x, "y": y} for x, y in itertools.product([1, 2, 3], [True, False])]
    expected += [{"kind": "b", "y": y} for y in (True, False)]
    assert sorted(map(point_key, sp.grid())) == sorted(map(point_key, expected))
    with pytest.raises(SpaceError) as e:
        Space.parse({"lr": {"loguniform": [1e-3, 1]}}).grid()
    assert e.value.param == "lr"
