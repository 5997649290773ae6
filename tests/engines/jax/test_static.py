"""`Static`: the model's integer structure is part of a program's structure, compared by
content, read-only, and comes back as `Static` from the parameter file."""

from __future__ import annotations

import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import params_io
from l2run.engines.jax.params import ModelParams, load_params
from l2run.engines.jax.static import Static, concrete


def test_static_is_compared_by_content_and_read_only() -> None:
    a, b = Static(np.array([1, 2, 3])), Static([1, 2, 3])
    assert a == b and hash(a) == hash(b)
    assert a != Static([1, 2, 4])
    assert a != Static(np.array([1, 2, 3], dtype=np.int8))  # same values, other dtype
    with pytest.raises(ValueError):
        a.array[0] = 7
    source = np.array([5, 6])
    c = Static(source)
    source[0] = 0  # the Static holds its own copy
    assert c.array[0] == 5
    assert (c.shape, c.dtype) == ((2,), source.dtype)
    np.testing.assert_array_equal(np.asarray(c), [5, 6])


def test_static_pickles_by_its_array() -> None:
    a = Static(np.array([[1, 2], [3, 4]], dtype=np.int32))
    b = pickle.loads(pickle.dumps(a))
    assert b == a and hash(b) == hash(a) and b.dtype == np.int32


def test_static_is_no_leaf_and_keys_the_jit_cache() -> None:
    traces = []

    @jax.jit
    def take(x, structure):
        traces.append(1)
        return x[concrete(structure["index"])]

    x = jnp.arange(5.0)
    assert jax.tree.leaves({"index": Static([0, 2])}) == []
    np.testing.assert_array_equal(take(x, {"index": Static([0, 2])}), [0.0, 2.0])
    take(x, {"index": Static(np.array([0, 2]))})  # equal content: no new trace
    assert len(traces) == 1
    np.testing.assert_array_equal(take(x, {"index": Static([4])}), [4.0])
    assert len(traces) == 2


def test_concrete_refuses_a_traced_value() -> None:
    with pytest.raises(TypeError, match="structure"):
        jax.jit(lambda i: concrete(i))(jnp.asarray([1]))
    with pytest.raises(TypeError, match="concrete"):
        jax.jit(lambda i: Static(i))(jnp.asarray([1]))


def test_model_structure_is_static_and_survives_the_file(tmp_path) -> None:
    params = load_params()
    for field in (
        params.tree.parent,
        params.tree.dof_coord,
        params.paths.body,
        params.paths.moving_target,
        params.contact.sphere_body,
        params.ligaments.coord,
        params.joint_splines.n,
    ):
        assert isinstance(field, Static)
    path = tmp_path / "params.npz"
    params_io.save(path, params, {})
    loaded, _ = params_io.load(path, ModelParams)
    assert loaded.paths.body == params.paths.body
    assert isinstance(loaded.tree.parent, Static)
    assert not isinstance(loaded.tree.mass, Static)  # floats stay leaves
    np.testing.assert_array_equal(loaded.tree.mass, params.tree.mass)
