"""The firewall model: policy parsing, decisions, the interval plan, the nft rendering, DNS rules.

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
