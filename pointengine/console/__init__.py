"""The staff console: a local web application for municipal staff (see app.py)."""
