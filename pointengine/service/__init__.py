"""Live traffic: signed ingestion, Redis streams, workers, settlement, JSON logs."""
