"""Training: config, data, losses, schedule, seeding, checkpoints and the (distributed) loop."""
