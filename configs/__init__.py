"""The presets, as the package ``model.presets`` once installed (pyproject.toml maps this folder there).

This file makes the folder a regular package so that importlib.resources finds the YAML files beside it in an
editable install too (setuptools' editable finder maps only regular packages below a top-level one).
"""
