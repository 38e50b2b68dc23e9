"""Replaying a file of events: the run, its checkpoints, its batches for Redis, and
simulation of a proposed program."""
