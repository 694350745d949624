"""Playing a task: the environment and policy interfaces, rollouts, exact evaluation, summary figures."""
