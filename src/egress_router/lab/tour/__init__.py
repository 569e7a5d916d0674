"""The guided tour (``egress-router lab demo``, ``scripts/demo``): every mode, run and checked.

One lab for the whole tour; each part (redirect, http-proxy, dns-proxy, firewall, cni, image)
drives the installed commands inside it exactly as a pod or a node would, checks what it
claims, and reports it. ``base`` holds the shared machinery, ``run`` the order and summary.
"""
