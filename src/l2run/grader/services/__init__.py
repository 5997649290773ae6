"""Business logic: participants, sessions (instances, episodes, steps), scoring, replays and
the simulation worker pool. Routes stay thin and call these."""
