"""posedex's model side: the DAE-GAN networks, their training, and the data they learn from.

Nothing here knows that an index or a UI exists (see DESIGN.md, "Layout").
"""

__version__ = "0.1.0"  # the one version source: pyproject.toml reads it (tool.setuptools.dynamic)
