"""The HTTP/1.1 forward proxy (``egress-router http-proxy``): CONNECT tunnels and absolute-form.

``model`` is pure: ``connection`` (the sans-I/O exchange core: states, decisions, actions),
``actions``, ``exchange`` (per-request record, access-log line), ``messages`` (heads, targets,
errors) and ``settings``. The adapters carry the core's actions out: ``client``/``upstream``
(the two asyncio Protocols: bytes in, events to the core), ``dial`` (resolve, check every
address, connect), ``splice`` (kernel-relayed CONNECT tunnels), ``worker`` (per-process state,
timers, drain) and ``server`` (sockets, worker processes, signals); ``contracts`` types what they
call on each other, so no two of them import each other in a cycle.
"""
