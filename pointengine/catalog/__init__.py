"""The rule language and the rule files: programs as written, located errors, loading and
checking ``rules/``."""
