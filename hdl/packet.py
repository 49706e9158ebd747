"""The packet stream every datapath stage speaks.

A frame travels as consecutive transfers of an ``amaranth.lib.stream`` whose
payload is :func:`packet_layout`: ``data`` (``data_width`` bits, first byte of
the frame in the least significant byte), ``first`` on the frame's first
transfer and ``last`` on its final one.  Wider paths add ``nbytes``: how many
bytes of ``data`` are valid on the ``last`` transfer (a full beat is
``data_width // 8``; on other transfers it is ignored).  At 8 bits every
transfer carries one byte and ``nbytes`` does not exist.

Frames on these streams exclude preamble, SFD and FCS: the MAC strips and
checks the FCS on receive and appends it on transmit.
"""

from amaranth.lib import data, stream

__all__ = ["packet_layout", "packet_signature"]


def packet_layout(data_width: int = 8) -> data.StructLayout:
    if not isinstance(data_width, int) or data_width < 8 or data_width % 8:
        raise ValueError(f"data_width must be a positive multiple of 8, not {data_width!r}")
    fields = {"data": data_width, "first": 1, "last": 1}
    if data_width > 8:
        fields["nbytes"] = (data_width // 8).bit_length()
    return data.StructLayout(fields)


def packet_signature(data_width: int = 8) -> stream.Signature:
    return stream.Signature(packet_layout(data_width))
