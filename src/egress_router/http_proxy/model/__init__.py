"""The HTTP proxy model: the destination rules.

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
