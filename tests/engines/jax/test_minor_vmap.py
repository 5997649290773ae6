"""`minor_vmap`: functions mapped with the batch on the last axis give `jax.vmap`'s results."""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l2run.engines.jax import minor_vmap
from l2run.engines.jax import rollout as fx
from l2run.engines.jax.params import load_params

B = 5
RNG = np.random.default_rng(0)
TABLE = RNG.normal(size=(4, 6))  # an unbatched constant the functions read


def _last(tree):
    return jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1), tree)


def _first(tree):
    return jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), tree)


def _assert_same_as_vmap(fun, shared, *batched, rtol=1e-13):
    """fun(shared, *batched rows) through vmap_minor (batch last) and jax.vmap (batch first)."""
    expected = jax.vmap(fun, in_axes=(None,) + (0,) * len(batched))(shared, *batched)
    mapped = minor_vmap.vmap_minor(fun, (False,) + (True,) * len(batched))
    got = _first(jax.jit(mapped)(shared, *_last(batched)))
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert g.shape == e.shape and g.dtype == e.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=1e-14)
    return got


def test_elementwise_with_unbatched_operands_and_scalars():
    def fun(table, x, s):
        y = jnp.where(x > 0.1, jnp.sin(x) * table, jnp.exp(-(x**2)) - s)
        return jnp.clip(y, -0.5, s), (x * 3).astype(jnp.int32) % 2, s + 1.0

    x = jnp.asarray(RNG.normal(size=(B, 4, 6)))
    s = jnp.asarray(RNG.uniform(0.2, 1.0, size=(B,)))
    _assert_same_as_vmap(fun, jnp.asarray(TABLE), x, s)


def test_shape_ops_and_reductions():
    def fun(table, x):
        y = jnp.concatenate([x, table], axis=1)[:, ::2]  # unbatched operand, strided slice
        z = jnp.pad(y.T.reshape(-1), (1, 2))[::-1]
        stacked = jnp.stack([x.sum(0), x.max(1)[:6] if x.shape[1] > 6 else x.min(0)])
        return z, stacked, jnp.argmax(x, axis=1), jnp.cumsum(x, 0), x[None, 2, :, None]

    x = jnp.asarray(RNG.normal(size=(B, 4, 6)))
    _assert_same_as_vmap(fun, jnp.asarray(TABLE), x)


def test_products_of_every_arrangement():
    def fun(table, m, v, c):
        return (
            m @ v,  # batched matrix, batched vector
            table.T @ v[:4],  # unbatched matrix
            jnp.einsum("cai,cax->ix", c, c[..., :2]),  # two contracted axes
            jnp.outer(v, v[:3]),  # nothing contracted
            jnp.einsum("bij,bj->bi", c, c[:, 0, :]),  # a dot_general batch axis
        )

    m = jnp.asarray(RNG.normal(size=(B, 6, 6)))
    v = jnp.asarray(RNG.normal(size=(B, 6)))
    c = jnp.asarray(RNG.normal(size=(B, 3, 2, 6)))
    _assert_same_as_vmap(fun, jnp.asarray(TABLE), m, v, c)


def test_gathers_at_fixed_and_per_runner_positions():
    rows = np.array([3, 0, 0, 2])

    def fun(table, x, i):
        per_runner = jnp.clip(i, 0, 3)
        return (
            x[rows],  # positions fixed while tracing
            x[:, rows],
            table[per_runner],  # unbatched operand, per-runner index (a dynamic slice)
            x[per_runner],  # batched operand, per-runner index
            jnp.take(x, jnp.stack([per_runner, 3 - per_runner]), axis=0),  # a batched gather
            jnp.take(table, jnp.stack([per_runner, 3 - per_runner]), axis=0),
            jnp.take_along_axis(x, jnp.argsort(x, axis=1), axis=1),
            jax.lax.dynamic_slice_in_dim(x, i, 2, axis=0),  # starts outside: clamped, as lax does
        )

    x = jnp.asarray(RNG.normal(size=(B, 4, 6)))
    i = jnp.asarray(RNG.integers(-1, 5, size=(B,)))
    _assert_same_as_vmap(fun, jnp.asarray(TABLE), x, i)


def test_loops_with_shared_and_per_runner_conditions():
    def fun(limit, x):
        # Newton's method for sqrt(x): each runner converges after its own number of steps
        def not_done(c):
            r, k = c
            return (jnp.abs(r * r - x) > 1e-12 * x) & (k < 50)

        root, iterations = jax.lax.while_loop(
            not_done, lambda c: (0.5 * (c[0] + x / c[0]), c[1] + 1), (x, 0)
        )
        # a shared condition, with a carry that starts unbatched and becomes batched
        total, _ = jax.lax.while_loop(
            lambda c: c[1] < limit, lambda c: (c[0] + root * c[1], c[1] + 1), (0.0, 0)
        )
        scanned = jax.lax.fori_loop(0, 4, lambda k, acc: acc * x + k, 0.0)
        return root, iterations, total, scanned

    x = jnp.asarray([1e-4, 2.0, 9.0, 1e6, 0.5])
    root, iterations, _, _ = _assert_same_as_vmap(fun, 3, x)
    np.testing.assert_allclose(root, np.sqrt(x), rtol=1e-12)
    assert len(set(np.asarray(iterations).tolist())) > 1  # the runners needed different counts


@pytest.fixture
def fell_back(monkeypatch) -> collections.Counter:
    """Primitive name -> how often `minor_vmap` fell back to JAX's batching rule for it."""
    counts = collections.Counter()
    original = minor_vmap._fallback

    def counting(eqn, *args):
        counts[eqn.primitive.name] += 1
        return original(eqn, *args)

    monkeypatch.setattr(minor_vmap, "_fallback", counting)
    return counts


def test_primitives_without_a_rule_use_jax_batching(fell_back):
    def fun(table, m, v):
        solved = jnp.linalg.solve(m + 6.0 * jnp.eye(6), v)  # LAPACK: no rule of its own
        branch = jax.lax.cond(v[0] > 0, lambda a: a * 2.0, lambda a: -a, v)
        return solved, branch, table  # an unbatched output comes back repeated

    m = jnp.asarray(RNG.normal(size=(B, 6, 6)))
    v = jnp.asarray(RNG.normal(size=(B, 6)))
    _, _, table = _assert_same_as_vmap(fun, jnp.asarray(TABLE), m, v)
    assert table.shape == (B, 4, 6)
    assert fell_back["cond"] == 1 and sum(fell_back.values()) > 1


def test_the_engine_step_needs_no_fallback(fell_back, monkeypatch):
    """Every primitive of the batched `imex_stiff` step has a rule that keeps the runners in
    the lanes: a fallback would move them to the front and back (correct but slow)."""
    monkeypatch.setattr(fx, "CPU_BATCH_LAYOUT", "minor")
    params = load_params()
    state = fx.batch_reset(params, np.zeros((2, 20, 3)), np.ones((2, 2)))
    step = fx._single_step(fx.env_step.DEFAULT_INTEGRATOR)
    jax.eval_shape(step, params, state, jnp.zeros((2, 18)))  # traces it, computes nothing
    assert fx.batch_layout("cpu") == "minor" and fx.batch_layout("gpu") == "major"
    monkeypatch.setattr(fx, "ACCELERATOR_BATCH_LAYOUT", "minor")  # bench_engines --batch-layout
    assert fx.batch_layout("gpu") == "minor" and fx.batch_layout("cpu") == "minor"
    if hasattr(jax.lax.GatherDimensionNumbers((), (), ()), "operand_batching_dims"):
        assert not fell_back
    else:  # JAX < 0.4.31: gathers at per-runner positions have no batching dimensions
        assert set(fell_back) <= {"gather"}


@pytest.mark.parametrize(("size", "chunk"), [(7, 3), (6, 3), (2, 3), (4, None)])
def test_map_in_chunks_keeps_rows_in_order(size, chunk):
    def fun(table, x, s):
        return table @ x * s, jnp.sum(x) + s

    x = jnp.asarray(RNG.normal(size=(size, 6)))
    s = jnp.arange(size, dtype=x.dtype)
    got = jax.jit(lambda t, x, s: minor_vmap.map_in_chunks(fun, t, (x, s), chunk))(TABLE, x, s)
    expected = jax.vmap(fun, in_axes=(None, 0, 0))(TABLE, x, s)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-13)


def test_inconsistent_batches_are_refused():
    mapped = minor_vmap.vmap_minor(lambda a, b: a + b, (True, True))
    with pytest.raises(ValueError, match="share one last-axis size"):
        mapped(jnp.zeros((3, 4)), jnp.zeros((3, 5)))
    with pytest.raises(TypeError, match="expected 2 arguments"):
        mapped(jnp.zeros((3, 4)))


def test_derivative_rules_survive_the_mapping():
    """A `lax.custom_root` Newton solve (a while loop reverse mode cannot differentiate) keeps
    its implicit-function derivative: `jax.grad` through the mapped function works and equals
    `jax.vmap`'s."""

    def fun(scale, x):
        def residual(r):
            return r * r - x * scale

        def newton(f, r0):
            def step(c):
                r, k = c
                return r - f(r) / (2.0 * r), k + 1

            return jax.lax.while_loop(
                lambda c: (jnp.abs(f(c[0])) > 1e-13) & (c[1] < 60), step, (r0, 0)
            )[0]

        root = jax.lax.custom_root(residual, x, newton, lambda g, y: y / g(jnp.ones_like(y)))
        return jnp.sum(root * x)

    x = jnp.asarray([0.5, 2.0, 9.0, 30.0, 4.0])
    minor = minor_vmap.vmap_minor(fun, (False, True))
    grad_minor = jax.grad(lambda s: jnp.sum(minor(s, x)))(2.0)
    grad_vmap = jax.grad(lambda s: jnp.sum(jax.vmap(fun, in_axes=(None, 0))(s, x)))(2.0)
    np.testing.assert_allclose(grad_minor, grad_vmap, rtol=1e-12)
    expected = np.sum(x**2 / (2.0 * np.sqrt(2.0 * x)))  # d/ds of sum(x sqrt(s x)) at s = 2
    np.testing.assert_allclose(grad_minor, expected, rtol=1e-10)


def test_tracing_batch_is_set_only_while_a_batch_is_traced():
    seen = []

    def fun(x):
        seen.append(minor_vmap.tracing_batch())
        return x * 2.0

    jax.jit(minor_vmap.vmap_minor(fun, (True,)))(jnp.ones((3, B)))
    jax.jit(lambda x: fun(x))(jnp.ones(3))  # a new function: JAX would reuse fun's trace
    assert seen == [True, False]
    assert not minor_vmap.tracing_batch()


def test_batched_rigid_body_terms_and_step_equal_the_dense_ones():
    """In a batch the mass matrix is summed from per-body blocks (`dynamics.weighted_gram`);
    jax.vmap traces the dense product: the same matrices, and the same substep."""
    from l2run.engines.jax import dynamics, kinematics

    params = load_params()
    q = jnp.asarray(RNG.uniform(-1.0, 1.0, size=(B, 9)))
    u = jnp.asarray(RNG.normal(size=(B, 9)))

    def terms(p, qq, uu):
        return dynamics.rigid_body_terms(p.tree, kinematics.model_frame_jacobians(p, qq, uu), uu)

    got = _assert_same_as_vmap(terms, params, q, u, rtol=1e-12)
    assert float(jnp.max(jnp.abs(got.mass_matrix))) > 1.0
