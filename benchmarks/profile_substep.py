"""Per-kernel CPU profile of one batched JAX substep, each kernel named by the source line it
came from.

    python benchmarks/profile_substep.py [--n 256 | --single] [--layout minor|major]
        [--scheme imex_stiff|imex] [--top 30] [--dtype float32]

Compiles one batched substep (float64, or `--dtype float32`; params passed as arguments as
`rollout.batch_step` does, with the engine's compile options; runners on the last axis as the
CPU batch has them, `--layout major` for `jax.vmap`'s layout) for N runners on N difficulty-2
courses (as many obstacle rows as a batch holds), runs it under
`jax.profiler`, reads the kernel times from the trace's XSpace file (a small protobuf reader below:
the profiler's own viewer is not a dependency) and prints the slowest kernels in µs per runner per
substep with their shapes and the innermost `l2run` source lines of the HLO's stack frames.
`benchmarks/RESULTS.md` (2026-12-02, later) shows what it found. Times under the profiler are
~10-30 % above untraced."""

from __future__ import annotations

import argparse
import collections
import glob
import re
import tempfile
from collections.abc import Iterator
from functools import partial

# Protobuf wire types used by XSpace.
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
PICOSECONDS_PER_MICROSECOND = 1e6


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes) -> Iterator[tuple[int, object]]:
    """(field number, value) of one protobuf message: ints for varints, bytes otherwise."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, i = _varint(buf, i)
        elif wire == FIXED64:
            value, i = buf[i : i + 8], i + 8
        elif wire == FIXED32:
            value, i = buf[i : i + 4], i + 4
        elif wire == LENGTH_DELIMITED:
            size, i = _varint(buf, i)
            value, i = buf[i : i + size], i + size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def event_times(xspace: bytes) -> dict[str, float]:
    """Total duration (µs) per event name over every plane and line of an XSpace."""
    # XSpace.planes = 1; XPlane.lines = 3, .event_metadata = 4 (map id -> XEventMetadata.name = 2);
    # XLine.events = 4; XEvent.metadata_id = 1, .duration_ps = 3.
    totals: collections.Counter[str] = collections.Counter()
    for number, plane in _fields(xspace):
        if number != 1:
            continue
        names: dict[int, str] = {}
        lines = []
        for field, value in _fields(plane):
            if field == 3:
                lines.append(value)
            elif field == 4:
                entry = dict(_fields(value))
                meta = dict(_fields(entry.get(2, b"")))
                names[entry.get(1, 0)] = meta.get(2, b"").decode(errors="replace")
        for line in lines:
            for field, event in _fields(line):
                if field == 4:
                    ev = dict(_fields(event))
                    totals[names.get(ev.get(1, 0), "?")] += ev.get(3, 0)
    return {k: v / PICOSECONDS_PER_MICROSECOND for k, v in totals.items()}


def _stack_tables(hlo: str) -> dict[int, str]:
    """stack_frame_id -> 'file:line:function < caller ...' from the HLO text's tables."""
    section, files, functions, locations, frames = None, {}, {}, {}, {}
    for raw in hlo.splitlines():
        line = raw.strip()
        if line in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
            section = line
            continue
        if not section or not re.match(r"^\d+ ", line):
            section = None if not line else section
            continue
        key, value = line.split(" ", 1)
        if section == "FileNames":
            files[int(key)] = value.strip('"').split("/")[-1]
        elif section == "FunctionNames":
            functions[int(key)] = value.strip('"')
        else:
            fields = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", value)}
            (locations if section == "FileLocations" else frames)[int(key)] = fields

    def describe(frame_id: int, depth: int = 2) -> str:
        out, seen = [], set()
        while frame_id in frames and frame_id not in seen and len(out) < depth:
            seen.add(frame_id)
            loc = locations.get(frames[frame_id]["file_location_id"], {})
            file = files.get(loc.get("file_name_id", 0), "?")
            if file not in ("profile_substep.py", "api.py"):
                function = functions.get(loc.get("function_name_id", 0), "?")
                out.append(f"{file}:{loc.get('line')}:{function.split('.')[-1]}")
            frame_id = frames[frame_id]["parent_frame_id"]
        return " < ".join(out)

    return {k: describe(k) for k in frames}


def kernel_sources(hlo: str) -> dict[str, tuple[str, str]]:
    """Instruction name -> (result shape, source lines) for every instruction of the HLO."""
    stacks = _stack_tables(hlo)
    out = {}
    for line in hlo.splitlines():
        m = re.match(r"\s+(?:ROOT )?%([\w.\-]+) = (.*?) [\w\-]+\(", line)
        if m:
            frame = re.search(r"stack_frame_id=(\d+)", line)
            source = stacks.get(int(frame.group(1)), "") if frame else ""
            out[m.group(1)] = (m.group(2)[:34], source)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=256, help="runners in the batch")
    ap.add_argument("--scheme", choices=("imex_stiff", "imex"), default="imex_stiff")
    ap.add_argument("--top", type=int, default=30, help="kernels to list")
    ap.add_argument("--calls", type=int, default=10, help="profiled calls")
    ap.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    ap.add_argument(
        "--single", action="store_true", help="one runner, not vmapped (as the single env runs)"
    )
    ap.add_argument(
        "--layout",
        choices=("minor", "major"),
        default="minor",
        help="batch layout: runners last (minor_vmap, the CPU batch's) or first (jax.vmap)",
    )
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from bench_engines import batched_state, first_state, smooth_excitations

    from l2run.engines.jax import loop_kernels, minor_vmap, system
    from l2run.engines.jax import rollout as fx
    from l2run.engines.jax.integrate import Continuous
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.step import parse_integrator
    from l2run.engines.jax.xla_options import engine_jit

    n, stiff = (1 if args.single else args.n), args.scheme == "imex_stiff"
    params64 = load_params()
    params = fx.cast_floats(params64, args.dtype)
    state1 = first_state(params64, parse_integrator(f"{args.scheme}:10"))
    batch = fx.cast_floats(batched_state(state1, n), args.dtype)
    y = Continuous(batch.q, batch.u, batch.activation, batch.fiber_length)
    excitation = jnp.asarray(smooth_excitations(1, n)[0], args.dtype)
    h = jnp.asarray(0.001, args.dtype)

    # The one-kernel loops as the runners-last batch and the single env trace them.
    kernels = args.single or args.layout == "minor"

    def substep(p, y, e, o, ps):
        with loop_kernels.single_kernel_loops(kernels):
            return system.imex_substep(p, y, e, o, ps, h, stiff=stiff)

    inputs = (params, y, excitation, batch.obstacles, batch.psoas)
    program = jax.vmap(substep, in_axes=(None, 0, 0, 0, 0))
    if args.layout == "minor":
        program = partial(minor_vmap.map_in_chunks, substep, chunk=None)
        inputs = (params, inputs[1:])
    if args.single:
        inputs = (
            params,
            *jax.tree.map(lambda a: a[0], (y, excitation, batch.obstacles, batch.psoas)),
        )
        program = substep
    # engine_jit: the compile options the engine's own programs get
    compiled = engine_jit(program).lower(*inputs).compile()
    for _ in range(3):
        jax.block_until_ready(compiled(*inputs))
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(args.calls):
                out = compiled(*inputs)
            jax.block_until_ready(out)
        (path,) = glob.glob(f"{trace_dir}/plugins/profile/*/*.xplane.pb")
        with open(path, "rb") as f:
            times = event_times(f.read())
    sources = kernel_sources(compiled.as_text())
    kernels = sorted(((t, k) for k, t in times.items() if k in sources), reverse=True)
    per_runner = args.calls * n
    # A while loop's time includes its body's kernels, which are listed too.
    total = sum(t for t, k in kernels if not k.startswith("while"))
    layout = "single" if args.single else args.layout
    print(
        f"{args.scheme}, {layout}, N = {n}: "
        f"{total / per_runner:.1f} µs per runner per substep in kernels"
    )
    for t, k in kernels[: args.top]:
        shape, source = sources[k]
        print(f"{t / per_runner:7.2f} µs  {k[:30]:30s} {shape:34s} {source}")


if __name__ == "__main__":
    main()
