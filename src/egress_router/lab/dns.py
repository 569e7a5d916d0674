"""A real DNS server for the lab: dnsmasq answering from a hosts file we rewrite at will.

Owns: starting dnsmasq in a lab namespace (by default the node, on its cluster address, as the
cluster DNS), changing its answers (rewrite the hosts file + SIGHUP, which dnsmasq honours by
re-reading it) and its TTL.
Must not: read the machine's /etc/hosts or /etc/resolv.conf, or forward queries anywhere.
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from egress_router.errors import DataplaneError
from egress_router.lab import procs

if TYPE_CHECKING:
    from egress_router.lab.topology import Lab

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class DnsServer:
    """dnsmasq serving ``records`` (name -> addresses) with a fixed TTL."""

    def __init__(
        self,
        lab: Lab,
        records: Mapping[str, Sequence[str]],
        *,
        role: str = "node",
        listen: str | None = None,
        ttl: int = 5,
        name: str = "dns",
        local_domains: Sequence[str] = (),
    ) -> None:
        self.lab = lab
        self.role = role
        self.listen = listen or str(lab.addr.node_cluster_ip)
        self.ttl = ttl
        self.name = name
        # Domains answered authoritatively: unknown names there get NXDOMAIN, not REFUSED.
        self.local_domains = tuple(local_domains)
        self.dir = lab.work / f"dnsmasq-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hosts = self.dir / "hosts"
        self.proc: procs.Background | None = None
        self._write(records)

    def _write(self, records: Mapping[str, Sequence[str]]) -> None:
        lines = [f"{ip} {host}\n" for host, ips in records.items() for ip in ips]
        tmp = self.hosts.with_suffix(".tmp")
        tmp.write_text("".join(lines))
        tmp.replace(self.hosts)

    def argv(self) -> list[str]:
        return [
            DNSMASQ,
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            f"--addn-hosts={self.hosts}",
            f"--listen-address={self.listen}",
            "--bind-interfaces",
            "--except-interface=lo" if not self.listen.startswith("127.") else "--interface=lo",
            f"--local-ttl={self.ttl}",
            "--cache-size=0",
            *(f"--local=/{domain}/" for domain in self.local_domains),
            f"--pid-file={self.dir / 'pid'}",
            "--user=root",
            "--log-facility=-",
            "--log-queries",
        ]

    def start(self, timeout: float = 10.0) -> DnsServer:
        self.proc = self.lab.spawn(self.role, self.argv(), name=f"dnsmasq-{self.name}")
        if not procs.wait_for(
            lambda: "started" in self.proc.output() if self.proc else False, timeout
        ):
            raise DataplaneError(f"dnsmasq did not start: {self.proc.output()[-500:]}")
        return self

    def set_records(self, records: Mapping[str, Sequence[str]]) -> None:
        """Replace every answer; takes effect at once (SIGHUP makes dnsmasq re-read)."""
        self._write(records)
        if self.proc is not None and self.proc.alive():
            self.proc.popen.send_signal(signal.SIGHUP)
            time.sleep(0.05)

    def use_from(self, *roles: str) -> None:
        """Make ``roles`` resolve through this server (their /etc/resolv.conf)."""
        for role in roles:
            self.lab.resolv_conf(role, [self.listen])
