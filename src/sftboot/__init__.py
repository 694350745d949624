"""sftboot: synthetic SFT bootstrap before RL, as a reproducible DVC pipeline."""
