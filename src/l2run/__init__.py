"""l2run: the NIPS 2017 "Learning to Run" environment, rebuilt on OpenSim 4.6 and JAX."""

__version__ = "0.1.0"
