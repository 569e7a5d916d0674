"""The HTTP proxy's pure parts: messages (heads, targets, errors), settings, the exchange core."""
