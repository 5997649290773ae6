"""The engine's indexed writes and fixed sums: `zeros(n).at[index].add(values)`,
`.at[index].set(values)`, and sums of values over fixed sets of rows.

With the indices known while tracing (numpy, as the model's structure is: `static.Static`),
every write is a gather at constant positions (and, where several rows meet in one slot, a sum
over a fixed small set): elementwise work that XLA fuses with its neighbours, costs the same
batched or not, and lets one runner's loops compile into single kernels (`loop_kernels`).
With traced indices the writes are JAX's scatters, or (while `loop_kernels.enabled()`) one-hot
masks and sums, whose work grows with the product of the sizes.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from l2run.engines.jax import loop_kernels


def known_while_tracing(index: object) -> bool:
    """Whether `index` is fixed in the program (numpy, as the model's `Static` structure),
    rather than one of its traced values."""
    return isinstance(index, np.ndarray)


def short_sum(x: jnp.ndarray, axis: int) -> jnp.ndarray:
    """`jnp.sum(x, axis)` over a short axis (a few entries). For one runner (while
    `loop_kernels.enabled()`) the entries are added out: a traced reduction costs every call of
    the program a reducer computation and its buffers. Batched, the reduction stays (the
    slices would cost transposes instead)."""
    if not loop_kernels.enabled():
        return jnp.sum(x, axis=axis)
    parts = [jnp.take(x, i, axis=axis) for i in range(x.shape[axis])]
    return functools.reduce(operator.add, parts)


def one_hot_mask(index: jnp.ndarray, size: int) -> jnp.ndarray:
    """Boolean (len(index), size): row i is true at column index[i] (nowhere if out of range)."""
    if known_while_tracing(index):
        return index[:, None] == np.arange(size, dtype=index.dtype)[None, :]
    return index[:, None] == jnp.arange(size, dtype=index.dtype)[None, :]


def sum_rows(groups: Sequence[np.ndarray], values: jnp.ndarray) -> jnp.ndarray:
    """(len(groups), ...): for each fixed set of row indices, the sum of those rows of `values`
    (k, ...); an empty set sums to zeros. One gather at constant positions and one small sum."""
    n_rows = values.shape[0]
    width = max((len(g) for g in groups), default=0)
    if width == 0:
        return jnp.zeros((len(groups),) + values.shape[1:], values.dtype)
    # Each set padded with the index of an appended zero row.
    table = np.full((len(groups), width), n_rows, dtype=np.int32)
    for i, g in enumerate(groups):
        table[i, : len(g)] = g
    padded = jnp.concatenate([values, jnp.zeros((1,) + values.shape[1:], values.dtype)])
    return short_sum(padded[table], axis=1)


def add_at(index: jnp.ndarray, values: jnp.ndarray, size: int) -> jnp.ndarray:
    """`zeros((size,) + values.shape[1:]).at[index].add(values)`: rows summed into their slots
    (indices outside [0, size) are dropped)."""
    if known_while_tracing(index):
        return sum_rows([np.flatnonzero(index == s) for s in range(size)], values)
    if not loop_kernels.enabled():
        return jnp.zeros((size,) + values.shape[1:], values.dtype).at[index].add(values)
    mask = one_hot_mask(index, size).reshape((index.shape[0], size) + (1,) * (values.ndim - 1))
    # A select and a sum: elementwise work that compiles into the loop's kernel.
    return jnp.sum(jnp.where(mask, values[:, None], 0.0), axis=0)


def add_at_2d(
    rows: jnp.ndarray, cols: jnp.ndarray, values: jnp.ndarray, shape: tuple[int, int]
) -> jnp.ndarray:
    """`zeros(shape).at[rows, cols].add(values)` for 1-D values."""
    fixed = known_while_tracing(rows) and known_while_tracing(cols)
    if not fixed and not loop_kernels.enabled():
        return jnp.zeros(shape, values.dtype).at[rows, cols].add(values)
    return add_at(rows * shape[1] + cols, values, shape[0] * shape[1]).reshape(shape)


def set_at(array: jnp.ndarray, flat_index: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
    """`array` with `array.flat[flat_index[i]] = values[i]` (indices distinct)."""
    if known_while_tracing(flat_index):
        # every entry read from `array` or, where written, from `values` appended after it
        source = np.arange(array.size)
        source[flat_index] = array.size + np.arange(flat_index.shape[0])
        return jnp.concatenate([array.reshape(-1), values])[source].reshape(array.shape)
    if not loop_kernels.enabled():
        return array.reshape(-1).at[flat_index].set(values).reshape(array.shape)
    hit = jnp.any(one_hot_mask(flat_index, array.size), axis=0)
    written = add_at(flat_index, values, array.size)
    return jnp.where(hit, written, array.reshape(-1)).reshape(array.shape)
