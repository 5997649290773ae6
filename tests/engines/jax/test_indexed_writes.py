"""Every spelling of the indexed writes equals JAX's `.at[]` scatters, repeated indices
included: traced indices as masks (while `loop_kernels` is enabled) or scatters (otherwise), and
indices known while tracing (numpy, as the model's `Static` structure) as fixed gathers and sums."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import loop_kernels
from l2run.engines.jax.indexed_writes import add_at, add_at_2d, set_at, sum_rows


@pytest.fixture(params=["masks", "scatters", "static"])
def spelling(request):
    with loop_kernels.single_kernel_loops(request.param == "masks"):
        yield request.param


def indices(spelling: str, values) -> np.ndarray | jnp.ndarray:
    """The indices as the spelling takes them: numpy for "static", a JAX array otherwise."""
    return np.asarray(values) if spelling == "static" else jnp.asarray(values)


def test_add_at_sums_rows_into_their_slots(spelling: str) -> None:
    rng = np.random.default_rng(0)
    index = [0, 3, 3, 5, 0, 2]  # repeated slots sum
    values = jnp.asarray(rng.normal(size=(6, 3)))
    want = jnp.zeros((7, 3)).at[jnp.asarray(index)].add(values)
    got = add_at(indices(spelling, index), values, 7)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    got = add_at(indices(spelling, index), values[:, 0], 7)
    np.testing.assert_allclose(got, want[:, 0], rtol=1e-15)


def test_add_at_2d_and_out_of_range_slots(spelling: str) -> None:
    rng = np.random.default_rng(1)
    rows, cols = [0, 1, 1, 2], [4, 0, 0, 3]
    values = jnp.asarray(rng.normal(size=4))
    want = jnp.zeros((3, 5)).at[jnp.asarray(rows), jnp.asarray(cols)].add(values)
    got = add_at_2d(indices(spelling, rows), indices(spelling, cols), values, (3, 5))
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # an index past the end writes nowhere (JAX's scatter drops it too)
    got = add_at(indices(spelling, [9]), jnp.asarray([1.0]), 3)
    np.testing.assert_allclose(got, jnp.zeros(3))


def test_set_at_replaces_only_the_indexed_entries(spelling: str) -> None:
    rng = np.random.default_rng(2)
    array = jnp.asarray(rng.normal(size=(4, 3, 2)))
    flat = [0, 7, 23]
    values = jnp.asarray([10.0, -2.0, 5.0])
    want = array.reshape(-1).at[jnp.asarray(flat)].set(values).reshape(array.shape)
    np.testing.assert_array_equal(set_at(array, indices(spelling, flat), values), want)


def test_static_writes_trace_without_scatters_or_masks() -> None:
    """With numpy indices the compiled program holds no scatter and no (slots × rows) compare:
    the writes are gathers at constant positions."""
    index = np.array([0, 3, 3, 5, 0, 2])

    def writes(values):
        return add_at(index, values, 7), set_at(values, index[:3], values[:3] * 2.0)

    text = jax.jit(writes).lower(jnp.ones(6)).as_text()
    assert "scatter" not in text
    assert "compare" not in text
    # the same writes with traced indices do scatter
    traced = jax.jit(lambda v, i: add_at(i, v, 7)).lower(jnp.ones(6), jnp.asarray(index))
    assert "scatter" in traced.as_text()


def test_sum_rows_sums_fixed_sets() -> None:
    values = jnp.asarray(np.random.default_rng(3).normal(size=(5, 2)))
    groups = [np.array([0, 4]), np.array([], dtype=int), np.array([2]), np.array([1, 2, 3])]
    got = sum_rows(groups, values)
    want = np.stack([np.asarray(values)[g].sum(axis=0) for g in groups])
    np.testing.assert_allclose(got, want, rtol=1e-15)
    # no rows at all: zeros of the right shape
    assert sum_rows([np.array([], dtype=int)] * 2, values).shape == (2, 2)
