"""Linux TAP interfaces for the simulation bridge, and a throw-away topology
of network namespaces around them.

Ref: Linux Documentation/networking/tuntap.rst (TUNSETIFF, IFF_TAP,
IFF_NO_PI); ip-netns(8), ip-link(8).

A TAP file descriptor reads and writes whole Ethernet frames without FCS --
the same unit the DUT's packet streams carry -- so a frame goes between the
two unchanged.  The descriptor is non-blocking: the simulation polls it every
few hundred cycles and must never stall on it.

The topology puts each TAP device into a namespace of its own (created here,
named with a prefix and this process's id) with an address from
10.77.0.0/16, so test traffic never touches the host's interfaces.  Needs
root (CAP_NET_ADMIN).
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess

__all__ = ["NamespaceTopology", "TapInterface", "need_root"]

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16


def need_root() -> str | None:
    """Why TAP and namespaces cannot be used here, or None if they can."""
    if os.geteuid() != 0:
        return "needs root for /dev/net/tun and network namespaces"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist"
    return None


class TapInterface:
    """A TAP device ``name`` (created if absent, removed on close)."""

    def __init__(self, name: str):
        if not isinstance(name, str) or not 0 < len(name.encode()) < IFNAMSIZ:
            raise ValueError(f"name must be an interface name of 1..15 bytes, not {name!r}")
        self.name = name
        self._fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(self._fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        except OSError:
            os.close(self._fd)
            raise
        self.frames_in = 0
        self.frames_out = 0

    def fileno(self) -> int:
        return self._fd

    def read(self) -> bytes | None:
        """One frame the kernel sent out of the interface, or None."""
        try:
            frame = os.read(self._fd, 65536)
        except BlockingIOError:
            return None
        self.frames_out += 1
        return frame

    def read_all(self) -> list[bytes]:
        frames = []
        while (frame := self.read()) is not None:
            frames.append(frame)
        return frames

    def write(self, frame: bytes) -> None:
        """Hand ``frame`` to the kernel as if it arrived on the interface."""
        try:
            os.write(self._fd, frame)
        except BlockingIOError:
            return  # the kernel's queue is full: a wire would drop it too
        self.frames_in += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class NamespaceTopology:
    """Namespaces ``<prefix><pid>-<n>`` holding one interface each.

    ``attach(link, address)`` moves an existing link (e.g. a TAP device opened by
    this process) into a new namespace, gives it
    ``address`` (CIDR) and brings it up; :meth:`exec` runs a command there.
    :meth:`close` deletes the namespaces and everything in them.
    """

    def __init__(self, prefix: str = "tpsim"):
        self.prefix = f"{prefix}{os.getpid()}"
        self.namespaces: list[str] = []

    def attach(self, link: str, address: str, *, mac: str | None = None) -> str:
        ns = f"{self.prefix}-{len(self.namespaces)}"
        _run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        _run("ip", "link", "set", link, "netns", ns)
        # No IPv6 in test namespaces: its router/MLD chatter would cross the wire too.
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
                       capture_output=True)
        if mac:
            _run("ip", "-n", ns, "link", "set", link, "address", mac)
        _run("ip", "-n", ns, "addr", "add", address, "dev", link)
        _run("ip", "-n", ns, "link", "set", link, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def exec(self, ns: str, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *args], **kwargs)

    def close(self) -> None:
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
        self.namespaces.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
