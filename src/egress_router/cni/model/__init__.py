"""The CNI model: plugin configuration, the skel (CNI_* environment), the EgressRouter CR.

Pure: no I/O and no adapter imports (an import-linter contract enforces it).
"""
