"""The TCP relay: accepted connections spliced to a chosen upstream with flow control."""
