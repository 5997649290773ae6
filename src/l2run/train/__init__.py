"""Training: SB3 baselines (DDPG/TD3/SAC), JAX PPO, the winners' wrappers, evaluation, and the
pretrained runner (a CMA-ES-tuned contact-driven balance controller, `walker.py`)."""
