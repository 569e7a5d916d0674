"""The HTTP proxy model: the destination rules, messages (heads, targets, errors), settings, and
the sans-I/O exchange core (``connection``, its ``actions`` and the ``exchange`` record).

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
