"""Both spellings of the indexed writes (masks while `loop_kernels` is enabled, scatters
otherwise) equal JAX's `.at[]` scatters, repeated indices included."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import loop_kernels
from l2run.engines.jax.indexed_writes import add_at, add_at_2d, set_at


@pytest.fixture(autouse=True, params=[True, False], ids=["masks", "scatters"])
def spelling(request):
    with loop_kernels.single_kernel_loops(request.param):
        yield request.param


def test_add_at_sums_rows_into_their_slots() -> None:
    rng = np.random.default_rng(0)
    index = jnp.asarray([0, 3, 3, 5, 0, 2])  # repeated slots sum
    values = jnp.asarray(rng.normal(size=(6, 3)))
    want = jnp.zeros((7, 3)).at[index].add(values)
    np.testing.assert_allclose(add_at(index, values, 7), want, rtol=1e-15)
    np.testing.assert_allclose(add_at(index, values[:, 0], 7), want[:, 0], rtol=1e-15)


def test_add_at_2d_and_out_of_range_slots() -> None:
    rng = np.random.default_rng(1)
    rows, cols = jnp.asarray([0, 1, 1, 2]), jnp.asarray([4, 0, 0, 3])
    values = jnp.asarray(rng.normal(size=4))
    want = jnp.zeros((3, 5)).at[rows, cols].add(values)
    np.testing.assert_allclose(add_at_2d(rows, cols, values, (3, 5)), want, rtol=1e-15)
    # an index past the end writes nowhere (JAX's scatter drops it too)
    np.testing.assert_allclose(add_at(jnp.asarray([9]), jnp.asarray([1.0]), 3), jnp.zeros(3))


def test_set_at_replaces_only_the_indexed_entries() -> None:
    rng = np.random.default_rng(2)
    array = jnp.asarray(rng.normal(size=(4, 3, 2)))
    flat = jnp.asarray([0, 7, 23])
    values = jnp.asarray([10.0, -2.0, 5.0])
    want = array.reshape(-1).at[flat].set(values).reshape(array.shape)
    np.testing.assert_array_equal(set_at(array, flat, values), want)
