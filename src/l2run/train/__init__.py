"""Training: SB3 baselines (DDPG/TD3/SAC), JAX PPO, the winners' wrappers, evaluation, and the
pretrained runner (CMA-ES-tuned: a contact-driven balance controller, `walker.py`, with a
second gait once the course is clear, `cruiser.py`)."""
