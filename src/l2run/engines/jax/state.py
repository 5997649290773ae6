"""The JAX engine's immutable per-environment state (a pytree; `vmap` batches every field).

Each environment carries its own course (obstacles, psoas strength), so a batch of environments
can run different courses in one call.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class EnvState(NamedTuple):
    """State of one runner and its course. Units: rad, m, rad/s, m/s, s; ground frame."""

    q: jnp.ndarray  # (9,) coordinates, `l2run.model.names.COORDINATES` order
    u: jnp.ndarray  # (9,) coordinate speeds
    activation: jnp.ndarray  # (18,) muscle activations, MUSCLES order
    fiber_length: jnp.ndarray  # (18,) m
    time: jnp.ndarray  # () s
    step_count: jnp.ndarray  # () int32, control steps taken since reset
    last_pelvis_x: jnp.ndarray  # () m, pelvis x at the previous control step (reward baseline)
    obstacles: jnp.ndarray  # (slots, 3) rows (x, y, r), padded (20, or a batch's maximum)
    psoas: jnp.ndarray  # (2,) left, right strength multipliers
    done: jnp.ndarray  # () bool, episode over (fall, step limit or non-finite state)
