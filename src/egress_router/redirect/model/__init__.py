"""The redirect model: EGRESS_* variables, the destination grammar, the network plan, the nft rules.

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
