"""Compatibility package: the seed's (osim-rl 1.5's) import paths, backed by l2run."""
