"""Builds the compiled modules; everything else about the package is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

MODULES = [
    "pointengine.store.compact",
    "pointengine.store.records",
    "pointengine.store.wire",
    "pointengine.store.apply",
    "pointengine.model.scan",
    "pointengine.lane.memo",
    "pointengine.lane.digest",
    "pointengine.lane.lane",
]

setup(
    ext_modules=cythonize(
        [Extension(name, [name.replace(".", "/") + ".pyx"]) for name in MODULES],
        compiler_directives={"language_level": "3"},
    ),
)
