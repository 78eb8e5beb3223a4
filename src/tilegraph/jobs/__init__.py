"""arq WorkerSettings and job functions."""
