"""The ranking model: features, the ranker, training, and the training window (no warehouse I/O)."""
