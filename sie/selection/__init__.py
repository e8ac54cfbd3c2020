"""Selection: which samples to keep, the (method × keep ratio × seed) retrain grid, and
retraining + evaluation of one cell. Shared by the nightly evaluate step and the benchmark."""
