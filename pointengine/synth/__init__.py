"""Synthetic populations and event streams, for the demo, simulation and load tests."""
