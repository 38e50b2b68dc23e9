"""``python -m pointengine``: the same as the ``pointengine`` command."""

from pointengine.cli.main import app

app()
