"""The pure core: parsers, models, policy decisions and planners.

Nothing here performs I/O (no sockets, subprocesses, netlink, asyncio or file access); an
import-linter contract in pyproject.toml enforces it. Functions take data and return data.
"""
