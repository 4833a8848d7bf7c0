"""initcli: inspect what Keras initialized a weight with, and whether it looks right."""

__version__ = "0.1.0"
