"""Adapters that put PACED into other training stacks. Each submodule imports its framework on import:
``paced.integrations.trl`` needs ``pip install 'paced[trl]'``."""
