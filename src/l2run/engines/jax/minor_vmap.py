"""`vmap` with the runners on the last (fastest-varying) axis of every intermediate array.

`jax.vmap` puts the mapped axis first: a batch of runners' path Jacobians is (B, 18, 5, 9), and
XLA's CPU kernels loop over the small model axes innermost (9 dofs, 3 components), where they
vectorise poorly and where every transpose and small product moves strided elements. Here each
array of one runner's program gains the batch as its *last* axis instead, so every kernel's
inner loop runs over runners: elementwise work fills the SIMD lanes, and transposes, slices
and gathers of the model axes move whole contiguous rows of runners. Measured on the whole
`imex_stiff` step on CPU (benchmarks/RESULTS.md, 2026-12-04 session 34): 1.15x less CPU per
runner in float64 and 1.46x in float32 than `jax.vmap`, same numbers to round-off.

How: `vmap_minor` traces the function for one runner to a jaxpr and evaluates it equation by
equation on batched values, each primitive with a rule that keeps the batch last (elementwise
ops broadcast unbatched operands with a trailing axis; shape ops append the batch axis to
their parameters; `dot_general` becomes multiply-adds over its few contracted entries; while
loops with a per-runner condition run until every runner is done and keep finished runners'
values; scans and nested jits are evaluated inside). A primitive without a rule falls back to
JAX's own batching rule with the batch moved to the front and back again (correct, slower).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import core as jcore

from l2run.engines.jax.xla_options import computed_once

# Elementwise primitives: operands of one shape (scalars allowed where noted in `_elementwise`).
ELEMENTWISE = frozenset(
    """abs acos acosh add add_any and asin asinh atan atan2 atanh cbrt ceil clamp
    convert_element_type copy copy_p cos cosh div eq erf erf_inv erfc exp exp2 expm1 floor ge gt
    integer_pow is_finite le lgamma log log1p logistic lt max min mul ne neg nextafter not or pow
    reduce_precision rem round rsqrt select_n shift_left shift_right_arithmetic
    shift_right_logical sign sin sinh sqrt square stop_gradient sub tan tanh xor""".split()
)
# Primitives whose parameters name only the runner's own axes, which keep their positions.
AXES_KEPT = frozenset(
    """argmax argmin cumlogsumexp cummax cummin cumprod cumsum reduce_and reduce_max reduce_min
    reduce_or reduce_prod reduce_sum reduce_xor rev squeeze""".split()
)
INLINED_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr"}

Value = tuple[Any, bool]  # (array, batched: has the trailing batch axis)

try:  # JAX's own interpreters do this; without it every op would point at this module
    from jax._src.source_info_util import user_context as _user_context
except ImportError:  # pragma: no cover - a JAX without it: only the profiles' labels lose
    _user_context = None


# True while `vmap_minor` traces the one-runner function it maps (see `tracing_batch`).
_TRACING_BATCH: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "tracing_minor_batch", default=False
)


def tracing_batch() -> bool:
    """Whether the code traced now will run for a batch of runners on the last axis. Where
    there, each operation fills the SIMD lanes with runners and costs in proportion to its
    terms, so skipping terms that are zero by the model's structure pays; for one runner a
    dense small product compiles to tighter code than the blocks it would be split into."""
    return _TRACING_BATCH.get()


def _source_of(eqn: Any) -> Any:
    if _user_context is None:
        return contextlib.nullcontext()
    return _user_context(eqn.source_info.traceback, name_stack=eqn.source_info.name_stack)


def vmap_minor(fun: Callable[..., Any], batched: Sequence[bool]) -> Callable[..., Any]:
    """`fun` mapped over the last axis of the arguments flagged in `batched` (whole pytrees:
    every leaf of a batched argument ends with the batch axis B); every output leaf gets the
    batch as its last axis. Use inside `jax.jit`: each call traces `fun` for one runner."""

    def mapped(*args: Any) -> Any:
        if len(args) != len(batched):
            raise TypeError(f"expected {len(batched)} arguments, got {len(args)}")
        sizes = {
            jnp.shape(leaf)[-1]
            for arg, b in zip(args, batched, strict=True)
            if b
            for leaf in jax.tree.leaves(arg)
        }
        if len(sizes) != 1:
            raise ValueError(f"batched leaves must share one last-axis size, got {sorted(sizes)}")
        (n,) = sizes
        one_runner = [
            jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x)[:-1], jnp.result_type(x)), a)
            if b
            else a
            for a, b in zip(args, batched, strict=True)
        ]
        token = _TRACING_BATCH.set(True)
        try:
            closed, out_shape = jax.make_jaxpr(fun, return_shape=True)(*one_runner)
        finally:
            _TRACING_BATCH.reset(token)
        flat, flags = [], []
        for arg, b in zip(args, batched, strict=True):
            leaves = jax.tree.leaves(arg)
            flat += leaves
            flags += [b] * len(leaves)
        results = eval_jaxpr(closed.jaxpr, closed.consts, flat, flags, n)
        outs = [x if b else _with_batch(x, n) for x, b in results]
        return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

    return mapped


def eval_jaxpr(
    jaxpr: Any, consts: Sequence[Any], args: Sequence[Any], flags: Sequence[bool], n: int
) -> list[Value]:
    """Evaluate `jaxpr` on `args` (batched ones with a trailing axis of size n)."""
    env: dict[Any, Value] = {}
    for var, c in zip(jaxpr.constvars, consts, strict=True):
        env[var] = (c, False)
    for var, a, b in zip(jaxpr.invars, args, flags, strict=True):
        env[var] = (a, b)

    def read(var: Any) -> Value:
        return (var.val, False) if isinstance(var, jcore.Literal) else env[var]

    for eqn in jaxpr.eqns:
        with _source_of(eqn):  # the ops made here name the runner's source line (profiles)
            _evaluate(eqn, read, env, n)
    return [read(v) for v in jaxpr.outvars]


def _evaluate(eqn: Any, read: Callable[[Any], Value], env: dict[Any, Value], n: int) -> None:
    """One equation: its primitive as is when no input is batched, else by its rule."""
    inputs = [read(v) for v in eqn.invars]
    values, flags = [x for x, _ in inputs], [b for _, b in inputs]
    if any(flags):
        outs, out_flags = _apply(eqn, values, flags, n)
    else:
        result = _bind(eqn, values)
        outs = result if eqn.primitive.multiple_results else [result]
        out_flags = [False] * len(outs)
    for var, x, b in zip(eqn.outvars, outs, out_flags, strict=True):
        env[var] = (x, b)


def _bind(eqn: Any, values: Sequence[Any]) -> Any:
    """The equation's primitive applied as written (call-like primitives take their functions
    as leading arguments, as JAX's own `eval_jaxpr` passes them)."""
    bind_params = eqn.primitive.get_bind_params(eqn.params)
    if isinstance(bind_params, tuple):  # JAX before 0.7: (functions, params)
        subfuns, bind_params = bind_params
        return eqn.primitive.bind(*subfuns, *values, **bind_params)
    return eqn.primitive.bind(*values, **bind_params)


def batched_outputs(jaxpr: Any, flags: Sequence[bool]) -> list[bool]:
    """Which outputs of `jaxpr` may depend on a batched input (a conservative data flow)."""
    batched = {v: b for v, b in zip(jaxpr.invars, flags, strict=True)}
    for eqn in jaxpr.eqns:
        b = any(batched.get(v, False) for v in eqn.invars if not isinstance(v, jcore.Literal))
        for v in eqn.outvars:
            batched[v] = b
    return [not isinstance(v, jcore.Literal) and batched.get(v, False) for v in jaxpr.outvars]


def _shape(var: Any) -> tuple[int, ...]:
    return tuple(var.aval.shape)


def _with_batch(x: Any, n: int) -> jnp.ndarray:
    """An unbatched value repeated along a new last axis of size n."""
    x = jnp.asarray(x)
    return lax.broadcast_in_dim(x, x.shape + (n,), tuple(range(x.ndim)))


def _full(x: Any, batched: bool, shape: tuple[int, ...], n: int) -> jnp.ndarray:
    """x (unbatched, or batched with fewer own axes: a scalar per runner) as shape + (n,)."""
    x = jnp.asarray(x)
    rank = len(shape)
    if batched:
        if x.shape == shape + (n,):
            return x
        own = x.ndim - 1
        return lax.broadcast_in_dim(x, shape + (n,), tuple(range(rank - own, rank)) + (rank,))
    return lax.broadcast_in_dim(x, shape + (n,), tuple(range(rank - x.ndim, rank)))


def _apply(eqn: Any, values: list, flags: list[bool], n: int) -> tuple[list, list[bool]]:
    name, params = eqn.primitive.name, dict(eqn.params)
    if name in ELEMENTWISE:
        return [_elementwise(eqn, values, flags, n)], [True]
    if name in AXES_KEPT:  # one operand, one result each
        return [eqn.primitive.bind(values[0], **params)], [True]
    if name in INLINED_CALLS:
        closed = params[INLINED_CALLS[name]]
        results = eval_jaxpr(closed.jaxpr, closed.consts, values, flags, n)
        return [x for x, _ in results], [b for _, b in results]
    rule = _RULES.get(name)
    if rule is not None:
        out = rule(eqn, params, values, flags, n)
        if out is not None:
            return out
    return _fallback(eqn, values, flags, n)


def _elementwise(eqn: Any, values: list, flags: list[bool], n: int) -> jnp.ndarray:
    name = eqn.primitive.name
    shape = _shape(eqn.outvars[0])
    args = []
    for i, (x, b) in enumerate(zip(values, flags, strict=True)):
        # lax lets these operands stay scalars beside arrays: select_n's predicate, clamp's bounds
        scalar_allowed = (name == "select_n" and i == 0) or (name == "clamp" and i != 1)
        if scalar_allowed and not b and jnp.ndim(x) == 0:
            args.append(x)
        else:
            args.append(_full(x, b, shape, n))
    return eqn.primitive.bind(*args, **eqn.params)


def _broadcast_in_dim(eqn, params, values, flags, n):
    if any(flags[1:]):  # dynamic shapes
        return None
    shape = tuple(params["shape"])
    params["shape"] = shape + (n,)
    params["broadcast_dimensions"] = tuple(params["broadcast_dimensions"]) + (len(shape),)
    return [eqn.primitive.bind(*values, **params)], [True]


def _reshape(eqn, params, values, flags, n):
    if params.get("dimensions") is not None or len(values) > 1:
        return None
    # row-major: merging or splitting the runner's own axes leaves the trailing axis alone
    params["new_sizes"] = tuple(params["new_sizes"]) + (n,)
    return [eqn.primitive.bind(values[0], **params)], [True]


def _transpose(eqn, params, values, flags, n):
    perm = tuple(params["permutation"])
    params["permutation"] = perm + (len(perm),)
    return [eqn.primitive.bind(values[0], **params)], [True]


def _slice(eqn, params, values, flags, n):
    params["start_indices"] = tuple(params["start_indices"]) + (0,)
    params["limit_indices"] = tuple(params["limit_indices"]) + (n,)
    if params.get("strides") is not None:
        params["strides"] = tuple(params["strides"]) + (1,)
    return [eqn.primitive.bind(values[0], **params)], [True]


def _concatenate(eqn, params, values, flags, n):
    args = [_full(x, b, _shape(v), n) for x, b, v in zip(values, flags, eqn.invars, strict=True)]
    return [eqn.primitive.bind(*args, **params)], [True]


def _pad(eqn, params, values, flags, n):
    if flags[1]:  # a per-runner padding value
        return None
    params["padding_config"] = tuple(params["padding_config"]) + ((0, 0, 0),)
    return [eqn.primitive.bind(values[0], values[1], **params)], [True]


def _dynamic_slice(eqn, params, values, flags, n):
    """Starts shared by all runners: one more axis taken whole. Per-runner starts (`a[p]` at a
    traced p): every possible start, picked by a chain of selects (this model's sliced axes
    are a few entries long, and a select chain keeps the runners in the lanes)."""
    shape, sizes = _shape(eqn.invars[0]), tuple(params["slice_sizes"])
    x = _full(values[0], flags[0], shape, n)
    starts, start_flags = values[1:], flags[1:]
    zero = jnp.zeros((), jnp.result_type(starts[0])) if starts else 0
    shared = [zero if b else s for s, b in zip(starts, start_flags, strict=True)]
    taken = [shape[d] if b else sizes[d] for d, b in enumerate(start_flags)]
    x = lax.dynamic_slice(x, [*shared, zero], [*taken, n])
    for axis, (start, b) in enumerate(zip(starts, start_flags, strict=True)):
        if not b:
            continue
        start = jnp.clip(start, 0, shape[axis] - sizes[axis])  # lax's own clamping
        out = lax.slice_in_dim(x, 0, sizes[axis], axis=axis)
        for j in range(1, shape[axis] - sizes[axis] + 1):
            candidate = lax.slice_in_dim(x, j, j + sizes[axis], axis=axis)
            pick = lax.broadcast_in_dim(start == j, candidate.shape, (candidate.ndim - 1,))
            out = lax.select(pick, candidate, out)
        x = out
    return [x], [True]


def _gather(eqn, params, values, flags, n):
    if flags[1]:
        return _gather_per_runner(eqn, params, values, flags, n)
    numbers = params["dimension_numbers"]
    # the batch axis is the operand's last window axis, so it comes out as the last axis
    offset = tuple(numbers.offset_dims) + (len(_shape(eqn.outvars[0])),)
    params["dimension_numbers"] = numbers._replace(offset_dims=offset)
    params["slice_sizes"] = tuple(params["slice_sizes"]) + (n,)
    return [eqn.primitive.bind(values[0], values[1], **params)], [True]


def _gather_per_runner(eqn, params, values, flags, n):
    """Per-runner indices (…, k, B): the runner axis moves before the index vector, where it
    is the indices' last batch axis and so the output's last axis; a batched operand is
    paired with it through gather's batching dimensions."""
    numbers = params["dimension_numbers"]
    if flags[0] and not hasattr(numbers, "operand_batching_dims"):
        return None  # a JAX before 0.4.31 has no gather batching dimensions: the fallback
    indices = jnp.moveaxis(values[1], -1, -2)
    operand = values[0]
    if flags[0]:
        operand_rank = len(_shape(eqn.invars[0]))
        numbers = numbers._replace(
            operand_batching_dims=tuple(numbers.operand_batching_dims) + (operand_rank,),
            start_indices_batching_dims=tuple(numbers.start_indices_batching_dims)
            + (indices.ndim - 2,),
        )
        params["slice_sizes"] = tuple(params["slice_sizes"]) + (1,)
    params["dimension_numbers"] = numbers
    return [eqn.primitive.bind(operand, indices, **params)], [True]


def _dot_general(eqn, params, values, flags, n):
    """Multiply-adds over the contracted entries, unrolled (this model contracts at most a few
    dozen), every term a full-lane elementwise product."""
    (l_contract, r_contract), (l_batch, r_batch) = params["dimension_numbers"]
    l_shape, r_shape = _shape(eqn.invars[0]), _shape(eqn.invars[1])
    l_free = [d for d in range(len(l_shape)) if d not in l_contract and d not in l_batch]
    r_free = [d for d in range(len(r_shape)) if d not in r_contract and d not in r_batch]
    terms = int(np.prod([l_shape[d] for d in l_contract], dtype=int))

    def arranged(x, batched, batch, free, contract, shape):
        """(batch..., free..., contracted flattened[, n])."""
        x = lax.transpose(
            jnp.asarray(x), (*batch, *free, *contract, *((len(shape),) if batched else ()))
        )
        own = tuple(shape[d] for d in (*batch, *free))
        return lax.reshape(x, own + (terms,) + ((n,) if batched else ()))

    lhs = arranged(values[0], flags[0], l_batch, l_free, l_contract, l_shape)
    rhs = arranged(values[1], flags[1], r_batch, r_free, r_contract, r_shape)
    nb, nl, nr = len(l_batch), len(l_free), len(r_free)
    out_shape = _shape(eqn.outvars[0]) + (n,)
    rank = len(out_shape)
    l_dims = (*range(nb + nl), *((rank - 1,) if flags[0] else ()))
    r_dims = (*range(nb), *range(nb + nl, nb + nl + nr), *((rank - 1,) if flags[1] else ()))
    dtype = params.get("preferred_element_type")
    dtype = jnp.result_type(lhs, rhs) if dtype is None else dtype
    out = None
    for k in range(terms):
        lk = lax.index_in_dim(lhs, k, nb + nl, keepdims=False)
        rk = lax.index_in_dim(rhs, k, nb + nr, keepdims=False)
        term = lax.broadcast_in_dim(lk, out_shape, l_dims) * lax.broadcast_in_dim(
            rk, out_shape, r_dims
        )
        out = term.astype(dtype) if out is None else out + term.astype(dtype)
    if out is None:  # nothing contracted over an empty axis
        return [jnp.zeros(out_shape, dtype)], [True]
    # stored, as a `dot` kernel's result is: consumers reading it several times do not redo
    # the sums
    return [computed_once(out)], [True]


def _carry_flags(
    body: Any, const_flags: list[bool], carry_flags: list[bool], x_flags: list[bool]
) -> tuple[list[bool], list[bool]]:
    """A loop's carries that become batched (fixed point) and its other outputs'."""
    carry = list(carry_flags)
    while True:
        out = batched_outputs(body, const_flags + carry + x_flags)
        widened = [a or b for a, b in zip(carry, out[: len(carry)], strict=True)]
        if widened == carry:
            return carry, out[len(carry) :]
        carry = widened


def _batched_as(values: list, flags: list[bool], wanted: list[bool], n: int) -> list:
    return [
        _with_batch(x, n) if w and not b else x
        for x, b, w in zip(values, flags, wanted, strict=True)
    ]


def _eval_as(closed: Any, args: list, flags: list[bool], wanted: list[bool], n: int) -> list:
    """`closed` evaluated, its outputs batched where `wanted` says (a loop's carries and a
    custom rule's outputs must keep one form from call to call)."""
    results = eval_jaxpr(closed.jaxpr, closed.consts, args, flags, n)
    return _batched_as([x for x, _ in results], [b for _, b in results], wanted, n)


def _scan(eqn, params, values, flags, n):
    """Scanned inputs and stacked outputs keep time first and runners last."""
    closed = params["jaxpr"]
    n_consts, n_carry = params["num_consts"], params["num_carry"]
    consts, carry, xs = (
        values[:n_consts],
        values[n_consts : n_consts + n_carry],
        values[n_consts + n_carry :],
    )
    c_flags, k_flags, x_flags = (
        flags[:n_consts],
        flags[n_consts : n_consts + n_carry],
        flags[n_consts + n_carry :],
    )
    carry_flags, y_flags = _carry_flags(closed.jaxpr, c_flags, k_flags, x_flags)
    carry = _batched_as(carry, k_flags, carry_flags, n)

    def body(c, x):
        flags_in = c_flags + carry_flags + x_flags
        outs = _eval_as(closed, [*consts, *c, *x], flags_in, carry_flags + y_flags, n)
        return outs[:n_carry], outs[n_carry:]

    carry, ys = lax.scan(
        body, carry, xs, length=params["length"], reverse=params["reverse"], unroll=params["unroll"]
    )
    return [*carry, *ys], carry_flags + y_flags


def _while(eqn, params, values, flags, n):
    """A condition that differs between runners: the loop runs while any runner's holds, and
    the runners whose condition is false keep their carries (as `jax.vmap` does)."""
    cond, body = params["cond_jaxpr"], params["body_jaxpr"]
    n_cond, n_body = params["cond_nconsts"], params["body_nconsts"]
    cond_consts, body_consts = values[:n_cond], values[n_cond : n_cond + n_body]
    carry = values[n_cond + n_body :]
    cc_flags, bc_flags = flags[:n_cond], flags[n_cond : n_cond + n_body]
    k_flags = flags[n_cond + n_body :]
    carry_flags, _ = _carry_flags(body.jaxpr, bc_flags, k_flags, [])
    per_runner = batched_outputs(cond.jaxpr, cc_flags + carry_flags)[0]
    if per_runner:
        carry_flags = [True] * len(carry)
    carry = _batched_as(carry, k_flags, carry_flags, n)

    def holds(c):
        ((pred, _),) = eval_jaxpr(
            cond.jaxpr, cond.consts, [*cond_consts, *c], cc_flags + carry_flags, n
        )
        return pred

    def step(c):
        return _eval_as(body, [*body_consts, *c], bc_flags + carry_flags, carry_flags, n)

    if not per_runner:
        return list(lax.while_loop(holds, step, carry)), carry_flags

    def step_running(c):
        running = holds(c)
        return [
            lax.select(lax.broadcast_in_dim(running, new.shape, (new.ndim - 1,)), new, old)
            for new, old in zip(step(c), c, strict=True)
        ]

    return list(lax.while_loop(lambda c: jnp.any(holds(c)), step_running, carry)), carry_flags


def _custom_jvp_call(eqn, params, values, flags, n):
    """The function evaluated runners-last, its derivative rule kept: differentiating it runs
    the rule JAX's way (batch first), e.g. the fibre solve's implicit-function derivative
    (`lax.custom_root`), whose Newton loop reverse mode could not go through."""
    closed = params["call_jaxpr"]
    out_flags = [True] * len(closed.jaxpr.outvars)  # as the rule's vmap returns them

    @jax.custom_jvp
    def call(*args: Any) -> list:
        return _eval_as(closed, list(args), flags, out_flags, n)

    @call.defjvp
    def call_jvp(primals: tuple, tangents: tuple) -> tuple[list, list]:
        def jvp_one(p: tuple, t: tuple) -> tuple:
            return jax.jvp(lambda *a: _bind(eqn, a), p, t)

        axes = tuple(-1 if b else None for b in flags)
        outs, out_tangents = jax.vmap(jvp_one, in_axes=(axes, axes), out_axes=-1, axis_size=n)(
            tuple(primals), tuple(tangents)
        )
        return list(outs), list(out_tangents)

    return call(*values), out_flags


_RULES: dict[str, Callable[..., Any]] = {
    "custom_jvp_call": _custom_jvp_call,
    "broadcast_in_dim": _broadcast_in_dim,
    "reshape": _reshape,
    "transpose": _transpose,
    "slice": _slice,
    "concatenate": _concatenate,
    "stack": _concatenate,
    "pad": _pad,
    "dynamic_slice": _dynamic_slice,
    "gather": _gather,
    "dot_general": _dot_general,
    "scan": _scan,
    "while": _while,
}


def _fallback(eqn: Any, values: list, flags: list[bool], n: int) -> tuple[list, list[bool]]:
    """JAX's own batching rule, the batch moved to the front and back (correct, not fast)."""

    def bind(*args: Any) -> Any:
        return _bind(eqn, args)

    in_axes = tuple(-1 if b else None for b in flags)
    result = jax.vmap(bind, in_axes=in_axes, out_axes=-1, axis_size=n)(*values)
    outs = list(result) if eqn.primitive.multiple_results else [result]
    return outs, [True] * len(outs)


def map_in_chunks(fun: Callable[..., Any], shared: Any, batched: Any, chunk: int | None) -> Any:
    """`fun(shared, *batched)` for every row of the leading axis B of `batched` (a tuple of
    pytrees), computed `vmap_minor` in chunks of `chunk` runners (a `lax.map` over the full
    chunks, then the remainder; None: one chunk). Inputs and outputs have B first, as
    `jax.vmap`'s; the layout change is inside."""
    mapped = vmap_minor(fun, (False,) + (True,) * len(batched))
    size = jax.tree.leaves(batched)[0].shape[0]

    def run(rows: Any) -> Any:  # rows: runners first -> last, and back
        out = mapped(shared, *jax.tree.map(lambda a: jnp.moveaxis(a, 0, -1), rows))
        return jax.tree.map(lambda a: jnp.moveaxis(a, -1, 0), out)

    if chunk is None or size <= chunk:
        return run(batched)
    full = (size // chunk) * chunk
    chunks = jax.tree.map(lambda a: a[:full].reshape((size // chunk, chunk) + a.shape[1:]), batched)
    out = jax.tree.map(lambda a: a.reshape((full,) + a.shape[2:]), lax.map(run, chunks))
    if full == size:
        return out
    rest = run(jax.tree.map(lambda a: a[full:], batched))
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), out, rest)
