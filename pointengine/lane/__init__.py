"""The compiled hot path: reading lines, deciding and applying the commonest ones without an
object per event, with exactly the Python path's results."""
