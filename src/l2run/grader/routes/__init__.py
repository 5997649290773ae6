"""HTTP routes: `envs` (the gym-http-api protocol), `leaderboard` (page + JSON), `replays`."""
