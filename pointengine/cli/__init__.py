"""The ``pointengine`` command."""
