"""Real servers for the lab: nginx as the external web server.

Owns: writing nginx configuration into the lab's work directory, starting it in a lab
namespace and reading its access log (which records the source address it saw).
Must not: use the system's nginx configuration, pid file or log directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from egress_router.common.endpoints import parse_endpoint
from egress_router.errors import DataplaneError
from egress_router.lab import procs

if TYPE_CHECKING:
    from egress_router.lab.topology import Lab

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ONE_MIB = 1024 * 1024


def _nginx_conf(prefix: Path, listen: list[str], workers: int) -> str:
    listens = "\n".join(f"        listen {spec} reuseport;" for spec in listen)
    return f"""
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
events {{ worker_connections 4096; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    sendfile on;
    server {{
{listens}
        root {prefix}/www;
        location = / {{
            default_type text/plain;
            return 200 "Hello World! You came from $remote_addr\\n";
        }}
        location = /ip {{
            default_type text/plain;
            return 200 "$remote_addr\\n";
        }}
        location = /server {{
            default_type text/plain;
            return 200 "$server_addr:$server_port $remote_addr\\n";
        }}
        location = /upload {{
            client_max_body_size 0;
            default_type text/plain;
            return 200 "ok\\n";
        }}
    }}
}}
"""


class Nginx:
    """An nginx instance in a lab namespace; ``stop`` via the lab's process group."""

    def __init__(self, lab: Lab, role: str, listen: list[str], workers: int = 1) -> None:
        self.lab = lab
        self.role = role
        self.listen = listen
        self.prefix = lab.work / f"nginx-{role}-{abs(hash(tuple(listen))) % 10_000}"
        (self.prefix / "www").mkdir(parents=True, exist_ok=True)
        (self.prefix / "www" / "1m.bin").write_bytes(b"x" * ONE_MIB)
        (self.prefix / "www" / "small.txt").write_bytes(b"ok\n")
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(_nginx_conf(self.prefix, listen, workers))
        self.proc: procs.Background | None = None

    def start(self, timeout: float = 10.0) -> Nginx:
        self.proc = self.lab.spawn(
            self.role,
            [NGINX, "-c", str(self.conf), "-p", str(self.prefix)],
            name=f"nginx-{self.role}",
        )
        # nginx's `listen`: PORT (every address: probed on loopback), ADDR:PORT, [V6]:PORT
        first = parse_endpoint(self.listen[0], default_host="127.0.0.1")
        if not procs.wait_for(lambda: self._listening(first.host, first.port), timeout):
            raise DataplaneError(f"nginx did not start: {self.proc.output()[-500:]}")
        return self

    def _listening(self, host: str, port: int) -> bool:
        code = (
            "import socket,sys\n"
            f"s=socket.socket(socket.AF_INET{'6' if ':' in host else ''}); s.settimeout(0.5)\n"
            f"sys.exit(s.connect_ex(({host!r},{port})))\n"
        )
        result: int = self.lab.exec(self.role, ["python3", "-c", code]).returncode
        return result == 0

    def access_log(self) -> str:
        path = self.prefix / "access.log"
        return path.read_text() if path.exists() else ""

    def client_addresses(self) -> list[str]:
        """The source address of every request nginx has logged, in order."""
        return [line.split(" ", 1)[0] for line in self.access_log().splitlines() if line]
