"""What lives on disk: the results store and its lock, checkpoints, probes, exports."""
