"""The engine's indexed writes, `zeros(n).at[index].add(values)` and `.at[index].set(values)`:
as JAX's scatters, or (while `loop_kernels.enabled()`) as one-hot masks and sums, which XLA's
CPU backend can compile into a single loop kernel (see `loop_kernels`). The writes are a few
dozen entries into arrays of at most a few hundred, so for one runner the masks cost less
than the kernel launches they save; batched, one scatter for all runners is cheaper.
"""

from __future__ import annotations

import jax.numpy as jnp

from l2run.engines.jax import loop_kernels


def one_hot_mask(index: jnp.ndarray, size: int) -> jnp.ndarray:
    """Boolean (len(index), size): row i is true at column index[i] (nowhere if out of range)."""
    return index[:, None] == jnp.arange(size, dtype=index.dtype)[None, :]


def add_at(index: jnp.ndarray, values: jnp.ndarray, size: int) -> jnp.ndarray:
    """`zeros((size,) + values.shape[1:]).at[index].add(values)`: rows summed into their slots."""
    if not loop_kernels.enabled():
        return jnp.zeros((size,) + values.shape[1:], values.dtype).at[index].add(values)
    mask = one_hot_mask(index, size).reshape((index.shape[0], size) + (1,) * (values.ndim - 1))
    # A select and a sum: elementwise work that compiles into the loop's kernel.
    return jnp.sum(jnp.where(mask, values[:, None], 0.0), axis=0)


def add_at_2d(
    rows: jnp.ndarray, cols: jnp.ndarray, values: jnp.ndarray, shape: tuple[int, int]
) -> jnp.ndarray:
    """`zeros(shape).at[rows, cols].add(values)` for 1-D values."""
    if not loop_kernels.enabled():
        return jnp.zeros(shape, values.dtype).at[rows, cols].add(values)
    flat = add_at(rows * shape[1] + cols, values, shape[0] * shape[1])
    return flat.reshape(shape)


def set_at(array: jnp.ndarray, flat_index: jnp.ndarray, values: jnp.ndarray) -> jnp.ndarray:
    """`array` with `array.flat[flat_index[i]] = values[i]` (indices distinct)."""
    if not loop_kernels.enabled():
        return array.reshape(-1).at[flat_index].set(values).reshape(array.shape)
    hit = jnp.any(one_hot_mask(flat_index, array.size), axis=0)
    written = add_at(flat_index, values, array.size)
    return jnp.where(hit, written, array.reshape(-1)).reshape(array.shape)
