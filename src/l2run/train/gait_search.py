"""CMA-ES search over a hand-designed controller's parameters: the periodic gait controller
(`l2run.train.gait`, kind "gait") or the contact-driven balance controller
(`l2run.train.walker`, kind "walker").

Fitness of one parameter vector = distance run (final pelvis x, m) + a small bonus per step
survived, over a horizon that grows (300 -> 1000 steps) once the best candidate survives it:
short horizons first keep early generations cheap on a slow engine.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from l2run.atomic_files import write_bytes_atomically
from l2run.engines.base import TIMESTEP_LIMIT
from l2run.env.runenv import MAX_SEED, check_seed
from l2run.train import cruiser, gait, planner, walker
from l2run.train.controller_params import read_policy_data, read_policy_file
from l2run.train.json_files import read_json_object, write_json_object
from l2run.train.resume_settings import check_same_settings
from l2run.train.run_dir import prepare_out_dir

SURVIVAL_BONUS_PER_STEP = 0.002  # m-equivalent per step alive: 2 m for a full 1000-step episode
MAX_EPISODE_STEPS = TIMESTEP_LIMIT

EpisodeFn = Callable[[np.ndarray, int, int], tuple[float, int]]
"""(params, horizon steps, seed) -> (distance m, steps survived)."""
PopulationFn = Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]
"""(params (P, n), horizon steps, course seed) -> (distances (P,) m, steps survived (P,))."""


CONTROLLERS: dict[str, tuple[ModuleType, type]] = {
    gait.KIND: (gait, gait.GaitPolicy),
    walker.KIND: (walker, walker.WalkerPolicy),
    cruiser.KIND: (cruiser, cruiser.CruiserPolicy),
}
"""kind -> (module with INITIAL_PARAMS, initial_memory and control; its policy class)."""


def controller(kind: str) -> tuple[ModuleType, type]:
    """The controller module and policy class of a kind ("gait", "walker" or "cruiser")."""
    if kind not in CONTROLLERS:
        raise ValueError(f"unknown controller {kind!r}: expected one of {sorted(CONTROLLERS)}")
    return CONTROLLERS[kind]


def load_controller_policy(path: str | Path) -> Any:
    """A GaitPolicy, WalkerPolicy, CruiserPolicy or PlannerPolicy (a cruiser guarded by the
    JAX engine's predictions) from its JSON file, by the file's `kind`."""
    data = read_policy_data(path)
    if data.get("kind") == planner.KIND:
        return planner.PlannerPolicy.load(path, data)
    module, policy_cls = controller(data.get("kind"))
    return policy_cls(*read_policy_file(path, module.KIND, data))


def start_params(path: str | Path, kind: str) -> np.ndarray:
    """A search's starting vector for controller `kind` from a policy file: the file's own, or
    for a cruiser started from a walker file, that walker with cruise values equal to its own."""
    policy = load_controller_policy(path)
    if kind == cruiser.KIND and type(policy) is walker.WalkerPolicy:
        return cruiser.from_walker(policy.params)
    return policy.params


@dataclass
class SearchConfig:
    max_env_steps: int = 200_000  # budget: environment steps over all episodes
    generations: int = 10_000
    popsize: int = 32
    sigma0: float = 0.15
    horizon0: int = 300
    horizon_step: int = 200
    seed: int = 0
    difficulty: int = 0
    engine: str = "opensim"
    episodes_per_candidate: int = 1
    controller: str = gait.KIND
    integrator: str = ""  # JAX engine only: "scheme:substeps"; "" = the engine's default
    action_noise: float = 0.0  # JAX engine only: std of Gaussian noise on every excitation
    survival_bonus: float = SURVIVAL_BONUS_PER_STEP  # fitness per step alive (m-equivalent)
    # Fitness (m-equivalent) taken off per episode that fell before the horizon. Distance and
    # survival bonus alone price a fall at ~10 m, which a gait ~0.2 m faster on every survivor
    # repays within ~100 courses: a search meant to cut falls must price them higher.
    fall_penalty: float = 0.0
    # Parameter groups (the controller's PARAM_LAYOUT names) held at their starting values:
    # the search runs over the others only, e.g. ["start"] for the walker stages tuned before
    # its start phase existed (which then reproduce exactly).
    frozen: tuple[str, ...] = ()
    max_obstacles: int = 3  # obstacles per course (the command line's --max-obstacles)
    # Of each candidate's episodes, this many run on courses whose tallest obstacle top is at
    # least `tall_top_m` high (m). The walker's falls concentrate on such courses, which are
    # about a quarter of all: drawing more of them sharpens the fitness where it fails.
    tall_episodes: int = 0
    tall_top_m: float = 0.17

    def validate(self) -> None:
        """ValueError naming the first field out of its range (before a search writes
        anything)."""
        from l2run.course import check_difficulty, check_max_obstacles
        from l2run.engines import ENGINE_NAMES

        positive = ("max_env_steps", "generations", "horizon0", "episodes_per_candidate")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if isinstance(self.popsize, bool) or not isinstance(self.popsize, int) or self.popsize < 2:
            raise ValueError(f"popsize must be an int >= 2 (CMA-ES), got {self.popsize!r}")
        if not isinstance(self.horizon_step, int) or self.horizon_step < 0:
            raise ValueError(f"horizon_step must be an int >= 0, got {self.horizon_step!r}")
        if not 0 <= self.tall_episodes <= self.episodes_per_candidate:
            raise ValueError("tall_episodes must be in [0, episodes_per_candidate]")
        if self.tall_episodes and self.difficulty == 0:
            raise ValueError("tall_episodes needs obstacles: difficulty must be 1 or 2")
        for name in ("sigma0", "action_noise", "survival_bonus", "fall_penalty", "tall_top_m"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.sigma0 <= 0 or self.action_noise < 0:
            raise ValueError("sigma0 must be > 0 and action_noise >= 0")
        if self.controller not in CONTROLLERS:
            raise ValueError(f"controller must be one of {tuple(CONTROLLERS)}")
        if self.engine not in ENGINE_NAMES:
            raise ValueError(f"engine must be one of {ENGINE_NAMES}, got {self.engine!r}")
        if self.engine != "jax":  # the OpenSim episodes would ignore them
            chosen = [
                n
                for n, v in (("integrator", self.integrator), ("action_noise", self.action_noise))
                if v != getattr(SearchConfig, n)
            ]
            if chosen:
                raise ValueError(
                    f"{' and '.join(chosen)} can only be set for the jax engine, not "
                    f"{self.engine!r}: remove them from the config or pass --engine jax"
                )
        check_difficulty(self.difficulty)
        check_max_obstacles(self.max_obstacles)
        # Each generation draws its courses from its own block of seeds (`generation_seeds`).
        check_seed(
            self.seed,
            highest=MAX_SEED - SEEDS_PER_GENERATION * (self.generations + 1),
            optional=False,
        )


TALL_SEED_OFFSET = 500  # tall-course seeds are searched from here within a generation's block
SEEDS_PER_GENERATION = 1000


def tallest_top(course: Any) -> float:
    """Height (m) of the highest obstacle top (centre y + radius) on a course; 0 if none."""
    obstacles = np.asarray(course.obstacles)
    return float(np.max(obstacles[:, 1] + obstacles[:, 2], initial=0.0))


def generation_seeds(config: SearchConfig, gen: int) -> list[int]:
    """Course seeds of one generation: `episodes_per_candidate - tall_episodes` consecutive
    seeds from `seed + 1000 gen`, then the first `tall_episodes` seeds from `seed + 1000 gen
    + 500` whose course (at the config's difficulty and obstacle count) is tall enough."""
    from l2run.course import generate_course

    if not 0 <= config.tall_episodes <= config.episodes_per_candidate:
        raise ValueError(
            f"tall_episodes must be in [0, episodes_per_candidate], got {config.tall_episodes}"
        )
    if config.tall_episodes and config.difficulty == 0:
        raise ValueError("tall_episodes needs obstacles: difficulty must be 1 or 2")
    base = config.seed + SEEDS_PER_GENERATION * gen
    seeds = list(range(base, base + config.episodes_per_candidate - config.tall_episodes))
    candidate = base + TALL_SEED_OFFSET
    while len(seeds) < config.episodes_per_candidate:
        rng = np.random.RandomState(candidate)
        course = generate_course(rng, config.difficulty, config.max_obstacles)
        if tallest_top(course) >= config.tall_top_m:
            seeds.append(candidate)
        candidate += 1
        if candidate >= base + SEEDS_PER_GENERATION:
            raise ValueError(
                f"fewer than {config.tall_episodes} courses with an obstacle top of "
                f"{config.tall_top_m} m among a generation's seeds: lower tall_top_m"
            )
    return seeds


def free_mask(layout: tuple[tuple[str, int], ...], frozen: tuple[str, ...]) -> np.ndarray:
    """Which entries of a parameter vector the search moves (bool (n,)), given frozen groups."""
    names = [name for name, _ in layout]
    unknown = sorted(set(frozen) - set(names))
    if unknown:
        raise ValueError(f"unknown parameter groups {unknown}: expected some of {names}")
    return np.concatenate([np.full(n, name not in frozen) for name, n in layout])


def runenv_episode_fn(
    engine: str, difficulty: int, max_obstacles: int = 3, kind: str = gait.KIND, **engine_kw: Any
) -> EpisodeFn:
    """Episodes in the real `RunEnv` (either engine), one env reused across calls; `engine_kw`
    go to the engine (e.g. the JAX engine's `integrator=("imex_stiff", 10)`)."""
    from l2run.env.runenv import RunEnv

    env = RunEnv(visualize=False, engine=engine, max_obstacles=max_obstacles, **engine_kw)
    policy_cls = controller(kind)[1]

    def episode(params: np.ndarray, horizon: int, seed: int) -> tuple[float, int]:
        policy = policy_cls(np.asarray(params))
        obs = env.reset(difficulty=difficulty, seed=seed)
        policy.reset()
        for i in range(horizon):
            obs, _reward, done, _info = env.step(policy.act(np.asarray(obs)))
            if done:
                return float(obs[1]), i + 1
        return float(obs[1]), horizon

    return episode


def per_episode(episode: EpisodeFn) -> PopulationFn:
    """A population evaluator that runs the candidates one after another (OpenSim)."""

    def population(xs: np.ndarray, horizon: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        results = [episode(x, horizon, seed) for x in xs]
        return np.array([d for d, _ in results]), np.array([n for _, n in results])

    return population


JAX_CHUNK_STEPS = 100  # control steps per jitted scan; the search stops early once all fell


def jax_population_fn(
    difficulty: int,
    max_obstacles: int = 3,
    kind: str = gait.KIND,
    integrator: Any = None,
    action_noise: float = 0.0,
) -> PopulationFn:
    """All candidates at once on the JAX engine: one batched runner per parameter vector, all
    on the same course (common random numbers make the ranking fairer), stepped in jitted
    `lax.scan` chunks of `JAX_CHUNK_STEPS` until every runner fell or the horizon is reached.

    `integrator` is an `Integrator` or "scheme:substeps" (default: the engine's `imex_stiff` x 10);
    the first step uses the scheme `step.first_step_integrator` pairs with it.

    `action_noise` > 0 adds Gaussian noise of that standard deviation to every excitation
    (clipped to [0, 1]): a controller that survives it is less likely to fall where another
    engine's numbers drift from these. The noise depends on the course seed and the step only,
    so all candidates meet the same noise (a fair ranking)."""
    import jax
    import jax.numpy as jnp

    from l2run.course import generate_course
    from l2run.engines.jax import step as env_step
    from l2run.engines.jax.params import load_params
    from l2run.engines.jax.rollout import batch_observe, batch_reset, batch_step, course_arrays
    from l2run.engines.jax.step import parse_integrator
    from l2run.engines.jax.xla_options import engine_jit
    from l2run.model.names import MUSCLES as MUSCLE_NAMES

    module = controller(kind)[0]
    model = load_params()
    integrator = parse_integrator(integrator or None)
    first = env_step.first_step_integrator(integrator)
    policy = jax.vmap(lambda x, m, o: module.control(x, m, o, xp=jnp))

    def noise(keys: jax.Array, step: jax.Array) -> jax.Array:
        def one(key, n):
            return jax.random.normal(jax.random.fold_in(key, n), (len(MUSCLE_NAMES),))

        return action_noise * jax.vmap(one)(keys, step)

    @engine_jit
    def run_chunk(model, state, obs, memory, xs, keys):
        def body(carry, _):
            s, o, m = carry
            m, a = policy(xs, m, o)
            if action_noise > 0.0:
                a = jnp.clip(a + noise(keys, s.step_count), 0.0, 1.0)
            s, o, _reward, _done = batch_step(model, s, a, integrator, first)
            return (s, o, m), None

        carry = (state, obs, memory)
        (state, obs, memory), _ = jax.lax.scan(body, carry, None, length=JAX_CHUNK_STEPS)
        return state, obs, memory

    def population(xs: np.ndarray, horizon: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return population_multi(xs, horizon, [seed])

    def population_multi(xs, horizon: int, seeds) -> tuple[np.ndarray, np.ndarray]:
        """Every candidate on every course in ONE batch: results (P, len(seeds)) as flat
        (P * len(seeds),) arrays, candidate-major."""
        courses = [
            generate_course(np.random.RandomState(s), difficulty, max_obstacles, seed=s)
            for s in seeds
        ]
        obstacles, psoas = course_arrays(courses * len(xs))
        state = batch_reset(model, jnp.asarray(obstacles), jnp.asarray(psoas))
        obs = batch_observe(model, state)
        xs_j = jnp.asarray(np.repeat(np.asarray(xs), len(seeds), axis=0))
        memory = jnp.tile(module.initial_memory(jnp), (xs_j.shape[0], 1))
        keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(list(seeds) * len(xs)))
        for _ in range(-(-horizon // JAX_CHUNK_STEPS)):
            state, obs, memory = run_chunk(model, state, obs, memory, xs_j, keys)
            if bool(jnp.all(state.done)):
                break
        steps = np.minimum(np.asarray(state.step_count), horizon)
        return np.asarray(state.q[:, 1], dtype=float), steps

    population.multi = population_multi  # type: ignore[attr-defined]
    return population


def population_fn(config: SearchConfig) -> PopulationFn:
    """The population evaluator a config asks for: the whole population in one batched rollout
    on the JAX engine, one episode after another on OpenSim."""
    if config.engine == "jax":
        return jax_population_fn(
            config.difficulty,
            config.max_obstacles,
            config.controller,
            config.integrator,
            config.action_noise,
        )
    episode = runenv_episode_fn(
        config.engine, config.difficulty, config.max_obstacles, config.controller
    )
    return per_episode(episode)


SEARCH_STATE_FILE = "search_state.pkl"  # run_dir.RUN_FILES lists it: keep the name
CURVE_PLOT_FILE = "curve.png"
SEARCH_CONFIG_FILE = "search_config.json"
CURVE_FILE = "curve.csv"
CURVE_HEADER = (
    "generation,horizon,evaluations,env_steps,wall_s,best_fitness,"
    "gen_best_distance,gen_mean_fitness,gen_best_falls\n"
)
# Raised whenever the state's keys or their meaning change, so an older state is refused
# rather than misread.
SEARCH_STATE_VERSION = 1
SEARCH_STATE_KEYS = frozenset(
    {
        "version",
        "es",  # the pickled cma.CMAEvolutionStrategy, with a copy of its random state
        "generation",  # the next generation to run
        "horizon",  # steps
        "best_fit",  # m-equivalent
        "best_x",
        "evals",
        "env_steps",
        "elapsed_s",  # wall seconds the search has run
        "x0",
        "config",  # asdict(SearchConfig)
    }
)
# The budget: a resumed search may be given more of it. Any other change would make the
# continued search a different one from the search that was started.
BUDGET_FIELDS = ("max_env_steps", "generations")


def resume_config(out_dir: str | Path) -> SearchConfig:
    """The SearchConfig a search saved in `out_dir`'s search_config.json (`frozen` as a
    tuple), validated; ValueError naming the file when it is missing, not JSON, not an
    object, or holds unknown fields or values out of range."""
    path = Path(out_dir) / SEARCH_CONFIG_FILE
    data = read_json_object(path, "the search config", "of SearchConfig fields")
    unknown = sorted(set(data) - {f.name for f in fields(SearchConfig)})
    if unknown:
        raise ValueError(f"{path}: not SearchConfig fields: {', '.join(unknown)}")
    frozen = data.get("frozen", ())
    if not isinstance(frozen, list | tuple) or not all(isinstance(g, str) for g in frozen):
        raise ValueError(f"{path}: frozen must be a list of parameter group names, got {frozen!r}")
    config = SearchConfig(**{**data, "frozen": tuple(frozen)})  # JSON has no tuples
    try:
        config.validate()
    except (TypeError, ValueError) as exc:  # TypeError: a value of the wrong type
        raise ValueError(f"{path}: {exc}") from None
    return config


def read_search_state(out_dir: str | Path, config: SearchConfig) -> dict[str, Any]:
    """The state (`SEARCH_STATE_KEYS`) a search saved in `out_dir` after its latest
    generation; ValueError when there is none, it cannot be read, or it was saved with a
    config that differs from `config` in more than the budget (`BUDGET_FIELDS`). The file is
    a pickle: resume only searches of your own."""
    import cma

    out = Path(out_dir)
    path = out / SEARCH_STATE_FILE
    if not path.is_file():
        raise ValueError(
            f"cannot resume the search in {out}: there is no {SEARCH_STATE_FILE} (a search "
            "writes it after each generation, so one stopped before its first generation "
            "finished, or run before resuming existed, cannot be resumed: start it anew)"
        )
    try:
        state = pickle.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    except Exception as exc:  # a damaged pickle can raise almost any error
        raise ValueError(
            f"{path} is damaged or not a search state ({type(exc).__name__}: {exc})"
        ) from None
    if (
        not isinstance(state, dict)
        or state.keys() != SEARCH_STATE_KEYS
        or state["version"] != SEARCH_STATE_VERSION
        or not isinstance(state["es"], cma.CMAEvolutionStrategy)
        or not isinstance(state["config"], dict)
    ):
        raise ValueError(
            f"{path} is not a search state of this version of l2run (format "
            f"{SEARCH_STATE_VERSION}); start the search anew"
        )
    check_same_settings(path, state["config"], asdict(config), BUDGET_FIELDS)
    return state


def trim_curve(curve: Path, next_generation: int) -> None:
    """Keep curve.csv's header and its complete rows of generations before
    `next_generation`: a search killed after writing a generation's row but before its state
    would otherwise list that generation twice once resumed (and a row cut off by the kill
    lacks its line end)."""
    lines = curve.read_text().splitlines(keepends=True) if curve.is_file() else []
    rows = [
        line
        for line in lines
        if line.endswith("\n")
        and line.split(",", 1)[0].isdigit()  # the header's is not
        and int(line.split(",", 1)[0]) < next_generation
    ]
    kept = [CURVE_HEADER, *rows]
    if lines != kept:  # else leave the file as it is
        write_bytes_atomically(curve, "".join(kept).encode())


def write_search_config(out: Path, config: SearchConfig) -> None:
    """search_config.json: the config as JSON (atomically: `resume_config` reads it)."""
    write_json_object(out / SEARCH_CONFIG_FILE, asdict(config))


def search(
    population: PopulationFn,
    config: SearchConfig,
    out_dir: str | Path,
    x0: np.ndarray | None = None,
    log: Callable[[str], None] = print,
    overwrite: bool = True,
    resume: bool = False,
) -> np.ndarray:
    """Run CMA-ES; write `best.json` (best sample), `mean.json` (the search distribution's mean,
    both GaitPolicy files), `curve.csv` and then `search_state.pkl` (all a resumed search
    needs) to `out_dir` every generation, `search_config.json` at the start and end,
    `curve.png` at the end. A previous run's files there are removed first with `overwrite`,
    else a folder that is not empty is refused.

    With `resume`, continue the search saved in `out_dir` from its latest finished
    generation, exactly as if it had not stopped (`x0` must be None; `config` must equal the
    saved one but for the budget, `max_env_steps` and `generations`, which may be raised); a
    search whose budget is spent runs nothing and returns its best. Returns the best sample's
    parameters."""
    import cma

    module, policy_cls = controller(config.controller)
    if resume:
        if x0 is not None:
            raise ValueError("x0 must not be given when resuming: the search keeps its own start")
        state = read_search_state(out_dir, config)
        x0 = state["x0"]
    else:
        x0 = module.INITIAL_PARAMS if x0 is None else np.asarray(x0, dtype=float)
    free = free_mask(module.PARAM_LAYOUT, tuple(config.frozen))
    if x0.shape != free.shape:
        raise ValueError(f"{config.controller}: x0 must have {free.size} values, got {x0.size}")
    # Scale each coordinate's step by its magnitude so gains and angles move comparably; the
    # search sees the free coordinates only.
    scale = np.where(free, np.maximum(np.abs(x0), 0.1), 0.0)

    def point(z: Any) -> np.ndarray:
        full = np.zeros_like(x0)
        full[free] = np.asarray(z)
        return x0 + scale * full

    if resume:
        out = Path(out_dir)
        trim_curve(out / CURVE_FILE, state["generation"])
        spent = (
            state["env_steps"] >= config.max_env_steps or state["generation"] >= config.generations
        )
        if spent:  # write nothing (a smaller budget is not the run's record) but what a
            # search killed after its last generation's state had still to draw
            if not (out / CURVE_PLOT_FILE).is_file():
                from l2run.train.curves import plot_search_curve

                plot_search_curve(out / CURVE_FILE, out / CURVE_PLOT_FILE)
            log(
                f"the search in {out} has run {state['generation']} generations and "
                f"{state['env_steps']} env steps, the budget (generations "
                f"{config.generations}, max_env_steps {config.max_env_steps}): nothing to run"
            )
            return state["best_x"]
        log(
            f"resuming the search in {out} from generation {state['generation']} "
            f"({state['env_steps']} env steps, {state['elapsed_s']:.0f} s so far)"
        )
    else:
        out = prepare_out_dir(out_dir, overwrite)  # after every check that can refuse the run
        # CMA-ES draws from numpy's global generator, seeded here; a pickled `es` carries a
        # copy of it, which a resumed search then draws from.
        es = cma.CMAEvolutionStrategy(
            np.zeros(int(free.sum())),
            config.sigma0,
            {"popsize": config.popsize, "seed": config.seed + 1, "verbose": -9},
        )
        state = {
            "es": es,
            "generation": 0,
            "horizon": config.horizon0,
            "best_fit": -np.inf,
            "best_x": x0.copy(),
            "evals": 0,
            "env_steps": 0,
            "elapsed_s": 0.0,
        }
        (out / CURVE_FILE).write_text(CURVE_HEADER)
    write_search_config(out, config)  # now, so that a search killed early still names it
    curve = out / CURVE_FILE
    es, horizon = state["es"], state["horizon"]
    best_fit, best_x = state["best_fit"], state["best_x"]
    evals, env_steps = state["evals"], state["env_steps"]
    t0 = time.time() - state["elapsed_s"]  # wall_s goes on from where the search stopped
    for gen in range(state["generation"], config.generations):
        if env_steps >= config.max_env_steps:
            break
        zs = es.ask()
        xs = np.array([point(z) for z in zs])
        k_eps = config.episodes_per_candidate
        seeds = generation_seeds(config, gen)
        if hasattr(population, "multi"):  # all courses in one batch (JAX)
            d, steps = population.multi(xs, horizon, seeds)
            d, steps = d.reshape(len(xs), k_eps), steps.reshape(len(xs), k_eps)
        else:
            runs = [population(xs, horizon, s) for s in seeds]
            d = np.stack([r[0] for r in runs], 1)
            steps = np.stack([r[1] for r in runs], 1)
        env_steps += int(np.sum(steps))
        evals += d.size
        fell = steps < horizon
        fit_sum = np.sum(d + config.survival_bonus * steps - config.fall_penalty * fell, 1)
        dist_sum = np.sum(d, 1)
        full = ~np.any(fell, 1)
        fits = list(fit_sum / config.episodes_per_candidate)
        dists = list(dist_sum / config.episodes_per_candidate)
        survived = list(full)
        es.tell(zs, [-f for f in fits])
        i = int(np.argmax(fits))
        best_falls = int(np.sum(fell[i]))
        if fits[i] > best_fit or gen == 0:
            best_fit, best_x = fits[i], point(zs[i])
            meta = {"fitness": best_fit, "horizon": horizon, "generation": gen, **asdict(config)}
            policy_cls(best_x, meta).save(out / "best.json")
        # The distribution's mean is usually more robust than the luckiest sample: keep it too.
        mean_meta = {"horizon": horizon, "generation": gen, **asdict(config)}
        policy_cls(point(es.mean), mean_meta).save(out / "mean.json")
        with curve.open("a") as fh:
            fh.write(
                f"{gen},{horizon},{evals},{env_steps},{time.time() - t0:.1f},{best_fit:.4f},"
                f"{dists[i]:.4f},{np.mean(fits):.4f},{best_falls}\n"
            )
        log(
            f"gen {gen:3d} steps {env_steps} horizon {horizon} best {best_fit:.3f} "
            f"gen-best dist {dists[i]:.3f} falls {best_falls}/{k_eps} "
            f"mean {np.mean(fits):.3f} ({time.time() - t0:.0f} s)"
        )
        longer = min(MAX_EPISODE_STEPS, horizon + config.horizon_step)
        if survived[i] and longer > horizon:
            # The best candidate got through the whole horizon: ask for longer runs. Fitness
            # values from different horizons are not comparable, so restart the record.
            horizon = longer
            best_fit = -np.inf
        # Last, once this generation's files are written: a search killed before this line
        # reruns the generation when resumed (the same courses and samples: the same rows).
        state = {
            "version": SEARCH_STATE_VERSION,
            "es": es,
            "generation": gen + 1,
            "horizon": horizon,
            "best_fit": best_fit,
            "best_x": best_x,
            "evals": evals,
            "env_steps": env_steps,
            "elapsed_s": time.time() - t0,
            "x0": x0,
            "config": asdict(config),
        }
        data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        write_bytes_atomically(out / SEARCH_STATE_FILE, data)
    write_search_config(out, config)  # with a resumed search's new budget
    from l2run.train.curves import plot_search_curve

    plot_search_curve(curve, out / CURVE_PLOT_FILE)
    return best_x
