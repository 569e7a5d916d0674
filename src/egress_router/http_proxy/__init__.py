"""The HTTP/1.1 forward proxy (``egress-router http-proxy``): CONNECT tunnels and absolute-form.

Modules: ``settings`` (knobs and bounds), ``messages`` (heads, hop-by-hop, errors), ``exchange``
(per-request record, access log line), ``client``/``upstream`` (the two Protocols), ``dial``
(resolve, check every address, connect), ``splice`` (kernel-relayed CONNECT tunnels), ``worker``
(per-process state, timers, drain) and ``server`` (sockets, worker processes, signals).
"""
