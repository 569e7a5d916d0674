"""The redirect mode (the router pod): ``model`` parses and plans, ``apply`` and ``report`` act."""
