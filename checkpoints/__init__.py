"""The shipped checkpoints, as the package ``model.checkpoints`` once installed (pyproject.toml maps this folder there).

This file makes the folder a regular package so that importlib.resources finds the weights beside it in an
editable install too (setuptools' editable finder maps only regular packages below a top-level one).
"""
