"""Two test hosts on one machine: network namespaces joined by a veth pair.

The two-host split of the stack (``robot-memory launch --host``) is tested and
measured here without a second computer: each namespace has its own network
stack (its own loopback, its own interface and address), so DDS traffic
between them crosses the veth link as it would cross a cable. Needs root (or
CAP_NET_ADMIN) and iproute2's ``ip``; :func:`unavailable_reason` says why not.

    with NamespaceHosts.create("rm") as hosts:
        subprocess.run(hosts.command("robot", ["python", "-m", ...]))
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def unavailable_reason() -> str | None:
    """None when network namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN)"
    probe = f"rmprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as err:
        return f"ip netns add failed: {err.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass
class NamespaceHosts:
    """Namespaces ``<prefix>r`` (robot) and ``<prefix>c`` (compute), addresses
    10.<a>.<b>.1 and .2 on a /24 of their own."""

    prefix: str
    subnet: str  # "10.a.b"

    @property
    def namespaces(self) -> dict[str, str]:
        return {"robot": f"{self.prefix}r", "compute": f"{self.prefix}c"}

    @property
    def addresses(self) -> dict[str, str]:
        return {"robot": f"{self.subnet}.1", "compute": f"{self.subnet}.2"}

    @classmethod
    def create(cls, prefix: str | None = None) -> NamespaceHosts:
        pid = os.getpid()
        hosts = cls(prefix or f"rm{pid % 100000}", f"10.{200 + pid % 50}.{pid // 50 % 250}")
        ns, addr = hosts.namespaces, hosts.addresses
        veth = {"robot": f"{hosts.prefix}vr", "compute": f"{hosts.prefix}vc"}
        try:
            for name in ns.values():
                _ip("netns", "add", name)
            _ip("link", "add", veth["robot"], "type", "veth", "peer", "name", veth["compute"])
            for host in ("robot", "compute"):
                _ip("link", "set", veth[host], "netns", ns[host])
                _ip("-n", ns[host], "addr", "add", f"{addr[host]}/24", "dev", veth[host])
                _ip("-n", ns[host], "link", "set", veth[host], "up")
                _ip("-n", ns[host], "link", "set", "lo", "up")
        except subprocess.CalledProcessError:
            hosts.delete()
            raise
        return hosts

    def command(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace (same pid, same files)."""
        return ["ip", "netns", "exec", self.namespaces[host], *argv]

    def link_bytes(self, host: str) -> tuple[int, int]:
        """(received, sent) bytes on ``host``'s end of the link so far."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.namespaces[host], "cat", "/proc/net/dev"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            name, _, rest = line.partition(":")
            if name.strip() == f"{self.prefix}v{host[0]}":
                fields = rest.split()
                return int(fields[0]), int(fields[8])
        raise RuntimeError(f"no veth in {self.namespaces[host]}")

    def delete(self) -> None:
        for name in self.namespaces.values():  # deleting a namespace removes its veth end
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)

    def __enter__(self) -> NamespaceHosts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()
