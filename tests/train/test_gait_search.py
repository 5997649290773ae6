"""The controller search's batched JAX evaluator equals episodes run one by one in RunEnv."""

from __future__ import annotations

import csv
import json
import pickle
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("jax")

from l2run.train import walker  # noqa: E402
from l2run.train.gait_search import jax_population_fn, runenv_episode_fn  # noqa: E402

INTEGRATOR = "imex_stiff:10"
HORIZON = 100  # one jitted chunk
SEED = 7


def _candidates() -> np.ndarray:
    rng = np.random.default_rng(0)
    return walker.INITIAL_PARAMS + np.abs(walker.INITIAL_PARAMS) * rng.normal(
        scale=0.1, size=(2, walker.N_PARAMS)
    )


def test_batched_walker_population_matches_runenv_episodes():
    xs = _candidates()
    population = jax_population_fn(2, 3, walker.KIND, INTEGRATOR)
    distances, steps = population(xs, HORIZON, SEED)
    episode = runenv_episode_fn("jax", 2, 3, walker.KIND, integrator=("imex_stiff", 10))
    for x, d, n in zip(xs, distances, steps, strict=True):
        want_d, want_n = episode(x, HORIZON, SEED)
        assert n == want_n
        assert d == pytest.approx(want_d, abs=1e-8)
    assert not np.isclose(distances[0], distances[1])  # the candidates really differ


@pytest.mark.slow
def test_action_noise_is_reproducible_and_changes_the_outcome():
    xs = _candidates()[:1]
    clean = jax_population_fn(0, 3, walker.KIND, INTEGRATOR)(xs, HORIZON, SEED)
    noisy_fn = jax_population_fn(0, 3, walker.KIND, INTEGRATOR, action_noise=0.1)
    first, again = noisy_fn(xs, HORIZON, SEED), noisy_fn(xs, HORIZON, SEED)
    np.testing.assert_array_equal(first[0], again[0])
    assert abs(first[0][0] - clean[0][0]) > 1e-6


def test_frozen_groups_stay_at_their_start_and_the_rest_is_searched(tmp_path):
    """With the walker's start phase frozen, every candidate keeps x0's start values (the
    stages tuned before it existed reproduce), the other parameters move; an unknown group
    is a clear error."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SearchConfig, free_mask, search

    start = ~free_mask(walker.PARAM_LAYOUT, ("start",))
    assert start.sum() == 2
    x0 = walker.INITIAL_PARAMS.copy()
    x0[start] = (-0.2, 0.8)
    seen = []

    def population(xs, horizon, seed):
        seen.append(np.array(xs))
        return -np.sum((xs - x0 - 0.1) ** 2, 1), np.full(len(xs), horizon)

    cfg = SearchConfig(generations=3, popsize=6, controller=walker.KIND, frozen=("start",))
    search(population, cfg, tmp_path, x0=x0, log=lambda _: None)
    xs = np.concatenate(seen)
    np.testing.assert_array_equal(xs[:, start], np.broadcast_to(x0[start], (len(xs), 2)))
    assert np.all(np.std(xs[:, ~start], axis=0) > 0)
    mean = walker.WalkerPolicy.load(tmp_path / "mean.json").params
    np.testing.assert_array_equal(mean[start], x0[start])
    with pytest.raises(ValueError, match="unknown parameter groups"):
        search(population, SearchConfig(controller=walker.KIND, frozen=("nope",)), tmp_path, x0)


def test_generation_seeds_draw_tall_courses_on_request():
    """Without tall episodes a generation's seeds are consecutive from seed + 1000 gen (the
    recipe of the committed stages); with them, the extra seeds' courses have an obstacle
    top at least tall_top_m high, and the plain ones are drawn as before."""
    from l2run.course import generate_course
    from l2run.train.gait_search import SearchConfig, generation_seeds, tallest_top

    plain = SearchConfig(seed=900000, difficulty=2, episodes_per_candidate=6)
    assert generation_seeds(plain, 3) == list(range(903000, 903006))
    cfg = SearchConfig(seed=900000, difficulty=2, episodes_per_candidate=6, tall_episodes=4)
    seeds = generation_seeds(cfg, 3)
    assert seeds[:2] == [903000, 903001] and len(set(seeds)) == 6
    tops = [tallest_top(generate_course(np.random.RandomState(s), 2, 3)) for s in seeds[2:]]
    assert min(tops) >= cfg.tall_top_m
    # the tall ones are rare: plain seeds mostly fall short of the threshold
    plain_tops = [tallest_top(generate_course(np.random.RandomState(s), 2, 3)) for s in range(40)]
    assert np.mean(np.array(plain_tops) >= cfg.tall_top_m) < 0.5
    assert tallest_top(generate_course(np.random.RandomState(1), 0, 3)) == 0.0
    with pytest.raises(ValueError, match="tall_episodes must be"):
        generation_seeds(SearchConfig(difficulty=2, tall_episodes=2), 0)
    with pytest.raises(ValueError, match="difficulty"):
        generation_seeds(SearchConfig(episodes_per_candidate=2, tall_episodes=1), 0)
    with pytest.raises(ValueError, match="lower tall_top_m"):
        generation_seeds(SearchConfig(difficulty=2, tall_episodes=1, tall_top_m=5.0), 0)


def test_train_command_rejects_a_config_whose_obstacle_count_disagrees(tmp_path):
    """--max-obstacles and a JSON config's max_obstacles must agree (no silent winner)."""
    import json

    from typer.testing import CliRunner

    from l2run.cli import app

    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"max_obstacles": 10}))
    args = ["train", "--algo", "walker", "--steps", "10", "--config", str(cfg)]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "max_obstacles" in result.output
    assert not (tmp_path / "run").exists()


def test_fall_penalty_ranks_a_fall_below_any_speed_gain(tmp_path):
    """Candidates run further the larger their first parameter but fall (one step short of the
    horizon) past x0's value: by distance alone the search's best falls; with a fall penalty
    its best is one that survived, and curve.csv counts the generation-best's falls."""
    pytest.importorskip("cma")
    import csv

    from l2run.train.gait_search import SearchConfig, search

    x0 = walker.INITIAL_PARAMS.copy()

    def population(xs, horizon, seed):
        fell = xs[:, 0] > x0[0]
        return xs[:, 0] - x0[0], np.where(fell, horizon - 1, horizon)

    best = {}
    for penalty in (0.0, 100.0):
        out = tmp_path / f"penalty{penalty:g}"
        cfg = SearchConfig(
            generations=4, popsize=8, controller=walker.KIND, horizon_step=0, fall_penalty=penalty
        )
        best[penalty] = search(population, cfg, out, x0=x0, log=lambda _: None)
        rows = list(csv.DictReader((out / "curve.csv").open()))
        falls = [int(r["gen_best_falls"]) for r in rows]
        assert len(falls) == 4 and set(falls) <= {0, 1}
        if penalty:
            assert falls == [0, 0, 0, 0]
        else:
            assert max(falls) == 1
    assert best[0.0][0] > x0[0] >= best[100.0][0]


# A resumable search: a stand-in population (no engine) keeps these tests fast. Every runner
# falls at FALL_STEP, so the horizon grows 300 -> 500 -> 700 and then stays (and with it the
# record best fitness): the state saved mid-search holds neither starting value.
FALL_STEP = 650
GENERATIONS = 7
STOP_AFTER = 5  # generations the interrupted search runs before it is resumed
HOUR_S = 3600.0


def _population(xs, horizon, seed):
    """Distances peaked near x0 + 0.1 and shifted a little by the course seed (so each
    generation's seeds matter); every runner survives min(horizon, FALL_STEP) steps."""
    distances = -np.sum((xs - walker.INITIAL_PARAMS - 0.1) ** 2, 1) + 1e-3 * (seed % 7)
    return distances, np.full(len(xs), min(horizon, FALL_STEP))


def _config(**changes):
    from l2run.train.gait_search import SearchConfig

    cfg = SearchConfig(generations=GENERATIONS, popsize=6, controller=walker.KIND)
    return replace(cfg, **changes)


def _quiet(_line: str) -> None:
    pass


def _curve(out) -> list[dict[str, str]]:
    """curve.csv's rows without the wall_s column (which no two runs share)."""
    rows = list(csv.DictReader((out / "curve.csv").open()))
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in rows]


def _state(out) -> dict:
    from l2run.train.gait_search import SEARCH_STATE_FILE

    return pickle.loads((out / SEARCH_STATE_FILE).read_bytes())


def _assert_same_search(out, want) -> None:
    """The search in `out` wrote the same curve rows, best.json and mean.json parameters and
    ended with the same CMA-ES mean as the one in `want`."""
    assert _curve(out) == _curve(want)
    for name in ("best.json", "mean.json"):
        got = walker.WalkerPolicy.load(out / name).params
        np.testing.assert_array_equal(got, walker.WalkerPolicy.load(want / name).params)
    np.testing.assert_array_equal(_state(out)["es"].mean, _state(want)["es"].mean)


@pytest.mark.parametrize("budget", ["generations", "max_env_steps"])
def test_a_resumed_search_equals_one_never_stopped(tmp_path, budget):
    """A search stopped by its budget after STOP_AFTER generations and resumed with a larger
    one to GENERATIONS writes what an uninterrupted search writes (wall_s aside, which goes
    on from the saved seconds); resumed once its budget is spent, it runs nothing and
    returns its best."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SEARCH_STATE_FILE, search

    whole = tmp_path / "whole"
    best = search(_population, _config(), whole, log=_quiet)
    rows = _curve(whole)
    assert len(rows) == GENERATIONS
    stopped = rows[STOP_AFTER - 1]
    assert int(stopped["horizon"]) == FALL_STEP + 50  # grown: the saved horizon matters
    limit = STOP_AFTER if budget == "generations" else int(stopped["env_steps"])
    part = tmp_path / "part"
    search(_population, _config(**{budget: limit}), part, log=_quiet)
    assert len(_curve(part)) == STOP_AFTER and _state(part)["generation"] == STOP_AFTER
    # As if the first part had run an hour: the resumed rows' wall_s go on from there.
    saved = _state(part)
    (part / SEARCH_STATE_FILE).write_bytes(pickle.dumps({**saved, "elapsed_s": HOUR_S}))
    logged = []
    numpy_state = np.random.get_state()
    np.random.seed(1)  # as in a new process: CMA-ES draws from the generator it pickled
    try:
        resumed = search(_population, _config(), part, log=logged.append, resume=True)
    finally:
        np.random.set_state(numpy_state)
    assert f"from generation {STOP_AFTER}" in logged[0]
    assert len(logged) == 1 + GENERATIONS - STOP_AFTER
    _assert_same_search(part, whole)
    np.testing.assert_array_equal(resumed, best)
    walls = [float(r["wall_s"]) for r in csv.DictReader((part / "curve.csv").open())]
    assert max(walls[:STOP_AFTER]) < HOUR_S <= min(walls[STOP_AFTER:])
    assert _state(part)["elapsed_s"] >= walls[-1]
    # Resumed once more with the same or a smaller budget: spent, so nothing is written.
    files = {p: p.read_bytes() for p in part.iterdir()}
    for config in (_config(), _config(generations=STOP_AFTER)):
        logged.clear()
        again = search(_population, config, part, log=logged.append, resume=True)
        np.testing.assert_array_equal(again, best)
        assert len(logged) == 1 and "nothing to run" in logged[0]
        assert files == {p: p.read_bytes() for p in part.iterdir()}


def test_a_search_killed_between_its_curve_row_and_its_state_resumes_without_that_row(tmp_path):
    """A kill after a generation's curve.csv row but before its state (here: a row for the
    next generation appended by hand, then a row cut off before its line end) leaves rows
    the resumed search drops before it reruns that generation."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import search

    whole, part = tmp_path / "whole", tmp_path / "part"
    search(_population, _config(), whole, log=_quiet)
    search(_population, _config(generations=STOP_AFTER), part, log=_quiet)
    with (part / "curve.csv").open("a") as fh:
        fh.write(f"{STOP_AFTER},{FALL_STEP},1,2,3.0,4.0,5.0,6.0,0\n1")
    search(_population, _config(), part, log=_quiet, resume=True)
    _assert_same_search(part, whole)


def test_a_fresh_search_writes_its_config_before_its_first_generation(tmp_path):
    """A search that dies in its first generation leaves search_config.json (what
    `resume_config` reads back, frozen as a tuple) but no state: resuming it is refused."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SEARCH_STATE_FILE, resume_config, search

    def broken(xs, horizon, seed):
        raise RuntimeError("engine crashed")

    cfg = _config(frozen=("start",))
    with pytest.raises(RuntimeError, match="engine crashed"):
        search(broken, cfg, tmp_path, log=_quiet)
    assert json.loads((tmp_path / "search_config.json").read_text())["frozen"] == ["start"]
    assert resume_config(tmp_path) == cfg
    assert not (tmp_path / SEARCH_STATE_FILE).exists()
    with pytest.raises(ValueError, match="no search_state.pkl.*after each generation"):
        search(_population, cfg, tmp_path, log=_quiet, resume=True)


def test_resume_refuses_a_damaged_state_another_config_and_a_start_point(tmp_path):
    """Each refusal names its cause and leaves the folder as it was."""
    pytest.importorskip("cma")
    from l2run.train.gait_search import SEARCH_STATE_FILE, search

    search(_population, _config(generations=1), tmp_path, log=_quiet)
    state = tmp_path / SEARCH_STATE_FILE
    good = state.read_bytes()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def refused(match, cfg=None, **kw):
        with pytest.raises(ValueError, match=match):
            search(_population, cfg or _config(), tmp_path, log=_quiet, resume=True, **kw)

    refused("x0 must not be given", x0=walker.INITIAL_PARAMS)
    refused(
        r"only max_env_steps, generations may change\): popsize: the run's 6, now 8",
        _config(popsize=8),
    )
    refused(r"frozen: the run's \(\), now \('start',\)", _config(frozen=("start",)))
    assert files == {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for damaged in (good[: len(good) // 2], b"not a pickle", b""):
        state.write_bytes(damaged)
        refused(f"{state} is damaged or not a search state")
    for foreign in ([1, 2], {**pickle.loads(good), "version": 0}):
        state.write_bytes(pickle.dumps(foreign))
        refused(f"{state} is not a search state of this version")
    state.write_bytes(good)
    search(_population, _config(generations=2), tmp_path, log=_quiet, resume=True)
    assert len(_curve(tmp_path)) == 2


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "cannot read the search config"),
        ("{not json", "is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"popsize": 6, "speed": 2}', "not SearchConfig fields: speed"),
        ('{"frozen": "start"}', "frozen must be a list"),
        ('{"popsize": 1}', "popsize must be an int >= 2"),
    ],
)
def test_resume_config_names_the_file_it_refuses(tmp_path, content, match):
    from l2run.train.gait_search import resume_config

    path = tmp_path / "search_config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        resume_config(tmp_path)
    assert str(path) in str(err.value)


def test_a_search_killed_before_drawing_its_curve_draws_it_when_resumed(tmp_path):
    pytest.importorskip("cma")
    from l2run.train.gait_search import search

    out = tmp_path / "run"
    search(_population, _config(generations=STOP_AFTER), out, log=_quiet)
    (out / "curve.png").unlink()  # killed after its last state, before the plot
    logged = []
    search(_population, _config(generations=STOP_AFTER), out, log=logged.append, resume=True)
    assert "nothing to run" in logged[0] and (out / "curve.png").stat().st_size > 0
