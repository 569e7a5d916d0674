"""Pure shared helpers: values (ports, CIDRs, addresses), the line splitter, nft builders,
nft_text, the DNS refresh schedule.

No I/O and no adapter imports (an import-linter contract in pyproject.toml enforces it).
"""
