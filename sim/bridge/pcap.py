"""pcap files per port: frames to feed into a port, and a record of what
entered and left each port, for Wireshark.

Ref: pcap file format (draft-ietf-opsawg-pcap), LINKTYPE_ETHERNET = 1,
nanosecond-resolution variant (magic 0xa1b23c4d).

Frames are stored as they travel on the DUT's streams: no FCS.  Timestamps
are simulated time (nanoseconds since the simulation began), so the capture
shows the gateware's timing, not the host's.
"""

from __future__ import annotations

from pathlib import Path

from scapy.utils import PcapReader, PcapWriter

__all__ = ["PcapRecorder", "read_frames"]

LINKTYPE_ETHERNET = 1


def read_frames(path: str | Path) -> list[bytes]:
    """All frames of a pcap file, as bytes, in file order."""
    with PcapReader(str(path)) as reader:
        return [bytes(packet) for packet in reader]


class PcapRecorder:
    """Writes ``port<i>_<direction>.pcap`` in ``directory``.

    Direction ``tx`` is what left port ``i`` of the DUT (its tx stream),
    ``rx`` is what was fed into it.  Files are flushed per frame, so they can
    be opened while the simulation still runs.
    """

    def __init__(self, directory: str | Path, *, ports: int, directions: tuple[str, ...] = ("rx", "tx")):
        if not isinstance(ports, int) or ports < 1:
            raise ValueError(f"ports must be a positive integer, not {ports!r}")
        for d in directions:
            if d not in ("rx", "tx"):
                raise ValueError(f"direction must be 'rx' or 'tx', not {d!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._writers = {
            (i, d): PcapWriter(str(self.path(i, d)), linktype=LINKTYPE_ETHERNET, nano=True, sync=True)
            for i in range(ports) for d in directions
        }
        # Write the file headers now, so a port that never carries a frame
        # still leaves a valid (empty) capture.
        for writer in self._writers.values():
            writer.write_header(None)

    def path(self, port: int, direction: str) -> Path:
        return self.directory / f"port{port}_{direction}.pcap"

    def record(self, port: int, direction: str, frame: bytes, time_ns: int) -> None:
        writer = self._writers.get((port, direction))
        if writer is not None:
            writer.write_packet(frame, sec=time_ns // 1_000_000_000, usec=time_ns % 1_000_000_000)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
