"""`Static`: the model's integer structure (indices, counts, point kinds), fixed when the model
is compiled, carried in `ModelParams` as part of the pytree's structure instead of as leaves.

A jitted function receives every leaf of its arguments as a traced value. With the indices as
leaves the engine could only write generic code for "the parent of body b", "the points on
body b", "the slot coordinate c drives": one-hot masks and dense 0/1 products, whose
arithmetic grows with the product of the sizes (a sixth of one runner's substep). As `Static`
nodes they are plain numpy arrays while a program is traced (and part of its jit cache key,
compared by content), so the engine writes those operations with the indices fixed: gathers
at constant positions and sums over fixed sets (`indexed_writes`, `kinematics.tree_sum`).
Floats stay leaves, so casting, vmapping or differentiating the parameters works as before.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


class Static:
    """A read-only numpy array that JAX treats as a constant of the program, not an input."""

    __slots__ = ("array", "_hash")

    def __init__(self, array: Any) -> None:
        if isinstance(array, Static):
            array = array.array
        if isinstance(array, jax.core.Tracer):
            raise TypeError("model structure must be concrete (numpy), not a traced value")
        value = np.array(array)  # a copy, so that nobody can change it under a compiled program
        value.setflags(write=False)
        self.array = value
        self._hash = hash((value.dtype.str, value.shape, value.tobytes()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Static) or self._hash != other._hash:
            return False
        a, b = self.array, other.array
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))

    def __reduce__(self) -> tuple:
        # rebuilt from the array: Python salts `hash` of bytes per process, so a pickled
        # `_hash` would not match an equal Static made in the process that unpickles it
        return (Static, (self.array,))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype)

    def __repr__(self) -> str:
        return f"Static({self.array!r})"

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


# No leaves: the object itself is the node's auxiliary data (`jax.tree_util.register_static`
# does this too, but only from JAX 0.4.3x on; the package allows 0.4.30).
jax.tree_util.register_pytree_node(Static, lambda s: ((), s), lambda s, _: s)


def concrete(value: Any) -> np.ndarray:
    """The numpy array of a `Static` (or of a concrete array given in its place); a clear error
    for a traced value, which cannot serve as structure."""
    if isinstance(value, Static):
        return value.array
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            "this model parameter is structure (indices): pass it as a Static or numpy array, "
            "not as a traced value"
        )
    return np.asarray(value)
