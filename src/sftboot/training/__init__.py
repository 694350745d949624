"""Models and their training: the student, SFT, RL with its weak spots and probes, model cards."""
