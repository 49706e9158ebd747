"""The message-port gateway: a real UDP socket on the host through which a CS
daemon reaches the DFS simulated behind the bridge.

Ref: RFC 791 (IPv4), RFC 768 (UDP; checksum 0 = none), RFC 826 (ARP);
docs/protocol.md (SSMB on UDP 6340, CSMB on UDP 6341 at the DFS).

The mapping, explicitly:

* Inside the simulated internal network there is one *virtual CS*
  (``cs_mac``/``cs_ip``, default 02:00:00:77:01:64 / 10.77.1.100).
* For each bus the gateway binds a host socket ``host:host_port``
  (``buses = {dfs_port: host_port}``, default {6340: 6340, 6341: 6341} on
  127.0.0.1).  A datagram the real CS sends there becomes
  ``Ether(cs_mac -> dfs_mac) / IPv4(cs_ip -> dfs_ip) / UDP(dfs_port ->
  dfs_port)`` injected into the DUT's internal port; the real CS's
  address is remembered per bus (the last one that sent on it).
* A frame leaving the internal port that is IPv4/UDP to ``cs_ip`` with a
  destination port that is one of the buses is unwrapped and its payload sent
  from that bus's socket to the remembered CS address (dropped and counted if
  no CS has spoken on that bus yet).  Other UDP to ``cs_ip`` is counted in
  ``dropped``; frames not for the virtual CS are left to other endpoints.
* An ARP request for ``cs_ip`` is answered with ``cs_mac``.

Injected frames are padded to the 60-byte Ethernet minimum (what the MAC
delivers); the UDP checksum is 0 unless ``udp_checksum`` is set, as the DFS's
messages carry none.  The core (:class:`GatewayCore`) does no I/O, so it is
tested without sockets; :class:`UdpGateway` is the socket adapter and a bridge
endpoint.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field

__all__ = ["GatewayConfig", "GatewayCore", "UdpGateway", "mac_bytes"]

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
IP_UDP = 17
MIN_FRAME = 60


def mac_bytes(mac: str | bytes) -> bytes:
    if isinstance(mac, bytes) and len(mac) == 6:
        return mac
    if isinstance(mac, str):
        parts = mac.split(":")
        if len(parts) == 6 and all(len(p) == 2 for p in parts):
            try:
                return bytes(int(p, 16) for p in parts)
            except ValueError:
                pass
    raise ValueError(f"not a MAC address: {mac!r}")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class GatewayConfig:
    dfs_mac: str | bytes
    dfs_ip: str
    cs_mac: str | bytes = "02:00:00:77:01:64"
    cs_ip: str = "10.77.1.100"
    host: str = "127.0.0.1"
    buses: dict[int, int] = field(default_factory=lambda: {6340: 6340, 6341: 6341})
    udp_checksum: bool = False
    #: Relay UDP from a bus port to an address other than ``cs_ip`` (sent to
    #: the cs_mac) to that address, from the bus's socket: the CS announces a
    #: host address as its SSMB address in HELLO, which a board reaches directly.
    relay_announced: bool = False

    def __post_init__(self):
        self.dfs_mac = mac_bytes(self.dfs_mac)
        self.cs_mac = mac_bytes(self.cs_mac)
        for name in ("dfs_ip", "cs_ip"):
            value = getattr(self, name)
            try:
                ipaddress.IPv4Address(value)
            except ValueError:
                raise ValueError(f"{name} must be an IPv4 address, not {value!r}") from None
        for dfs_port, host_port in self.buses.items():
            for p in (dfs_port, host_port):
                if not isinstance(p, int) or not 0 <= p < 65536:
                    raise ValueError(f"UDP port must be in 0..65535, not {p!r}")


class GatewayCore:
    """Wraps CS datagrams into frames and unwraps the DFS's answers (no I/O)."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self._dfs_ip = ipaddress.IPv4Address(config.dfs_ip).packed
        self._cs_ip = ipaddress.IPv4Address(config.cs_ip).packed
        self.cs_address: dict[int, tuple] = {}
        self._ident = 0
        self.wrapped = 0
        self.unwrapped = 0
        self.arp_replies = 0
        self.dropped = 0

    def from_cs(self, dfs_port: int, payload: bytes, address: tuple) -> bytes:
        """The frame that carries ``payload`` from the virtual CS to the DFS."""
        if dfs_port not in self.config.buses:
            raise ValueError(f"dfs_port must be one of {sorted(self.config.buses)}, not {dfs_port!r}")
        self.cs_address[dfs_port] = address
        self.wrapped += 1
        self._ident = (self._ident + 1) & 0xFFFF
        return self.udp_frame(self.config.dfs_mac, self.config.cs_mac, self._cs_ip, self._dfs_ip,
                              dfs_port, dfs_port, payload, self._ident)

    def udp_frame(self, dst_mac, src_mac, src_ip, dst_ip, sport, dport, payload, ident=0) -> bytes:
        udp_len = 8 + len(payload)
        udp_sum = 0
        if self.config.udp_checksum:
            pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, IP_UDP, udp_len)
            udp_sum = _checksum(pseudo + struct.pack("!HHHH", sport, dport, udp_len, 0) + payload) or 0xFFFF
        ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ident, 0x4000, 64, IP_UDP, 0,
                                   src_ip, dst_ip))
        ip[10:12] = struct.pack("!H", _checksum(bytes(ip)))
        frame = (dst_mac + src_mac + struct.pack("!H", ETH_IPV4) + bytes(ip)
                 + struct.pack("!HHHH", sport, dport, udp_len, udp_sum) + payload)
        return frame.ljust(MIN_FRAME, b"\0")

    def from_dfs(self, frame: bytes) -> tuple[bool, list[tuple[int, bytes, tuple]], list[bytes]]:
        """Look at a frame leaving the internal port.

        Returns (taken, datagrams, frames): whether the frame was for the
        virtual CS, the ``(dfs_port, payload, cs_address)`` datagrams to send
        to the real CS, and frames to inject back (ARP replies).
        """
        if len(frame) < 14:
            return False, [], []
        dst = frame[0:6]
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        if ethertype == ETH_ARP:
            return self._arp(frame)
        if ethertype != ETH_IPV4 or dst != self.config.cs_mac or len(frame) < 34:
            return False, [], []
        ihl = (frame[14] & 0x0F) * 4
        if frame[14] >> 4 != 4 or ihl < 20 or frame[23] != IP_UDP:
            return False, [], []
        if frame[30:34] != self._cs_ip:
            return self._relay(frame, ihl)
        total = struct.unpack_from("!H", frame, 16)[0]
        udp = frame[14 + ihl:14 + total]
        if len(udp) < 8:
            self.dropped += 1
            return True, [], []
        _sport, dport, length = struct.unpack_from("!HHH", udp)
        address = self.cs_address.get(dport)
        if dport not in self.config.buses or address is None or not 8 <= length <= len(udp):
            self.dropped += 1
            return True, [], []
        self.unwrapped += 1
        return True, [(dport, bytes(udp[8:length]), address)], []

    def _relay(self, frame: bytes, ihl: int):
        total = struct.unpack_from("!H", frame, 16)[0]
        udp = frame[14 + ihl:14 + total]
        if not self.config.relay_announced or len(udp) < 8:
            return False, [], []
        sport, dport, length = struct.unpack_from("!HHH", udp)
        if sport not in self.config.buses or not 8 <= length <= len(udp):
            return False, [], []
        self.unwrapped += 1
        address = (str(ipaddress.IPv4Address(frame[30:34])), dport)
        return True, [(sport, bytes(udp[8:length]), address)], []

    def _arp(self, frame: bytes):
        if len(frame) < 42:
            return False, [], []
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", frame, 14)
        sha, spa, tpa = frame[22:28], frame[28:32], frame[38:42]
        if (htype, ptype, hlen, plen, op) != (1, ETH_IPV4, 6, 4, 1) or tpa != self._cs_ip:
            return False, [], []
        cs_mac = self.config.cs_mac
        reply = (sha + cs_mac + struct.pack("!H", ETH_ARP)
                 + struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, 2) + cs_mac + self._cs_ip + sha + spa)
        self.arp_replies += 1
        return True, [], [reply.ljust(MIN_FRAME, b"\0")]


class UdpGateway:
    """Host sockets for each bus around a :class:`GatewayCore`; a bridge
    endpoint for the DUT's internal port."""

    def __init__(self, config: GatewayConfig):
        self.core = GatewayCore(config)
        self.sockets: dict[int, socket.socket] = {}
        try:
            for dfs_port, host_port in config.buses.items():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.bind((config.host, host_port))
                self.sockets[dfs_port] = s
        except OSError:
            self.close()
            raise
        self._pending: list[bytes] = []

    def address(self, dfs_port: int) -> tuple:
        """Where the real CS sends to reach the DFS's ``dfs_port``."""
        return self.sockets[dfs_port].getsockname()

    def poll(self) -> list[bytes]:
        frames, self._pending = self._pending, []
        for dfs_port, s in self.sockets.items():
            while True:
                try:
                    payload, address = s.recvfrom(65535)
                except BlockingIOError:
                    break
                frames.append(self.core.from_cs(dfs_port, payload, address))
        return frames

    def deliver(self, frame: bytes) -> bool:
        taken, datagrams, frames = self.core.from_dfs(frame)
        for dfs_port, payload, address in datagrams:
            try:
                self.sockets[dfs_port].sendto(payload, address)
            except OSError:
                self.core.dropped += 1
        self._pending.extend(frames)
        return taken

    def close(self) -> None:
        for s in self.sockets.values():
            s.close()
        self.sockets.clear()
