"""Command-line front ends, one module per command group; each exposes ``register(app)``.

These modules only translate flags and environment variables into calls of the models and the
adapters; they hold no logic of their own. Heavy imports happen inside the command bodies so
that one command's dependencies never slow down or break another.
"""
