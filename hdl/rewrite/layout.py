# The command of the command-driven NAT rewriter (hdl/rewrite/command_rewriter.py).
# Ref: RFC 791, RFC 793, RFC 768; model: twinplane.model.rewrite.RewriteCommandModel.
"""One ``RewriteCommand`` per frame: new values with an enable each, and the
old values the parser read (the IPv4 checksum passes before the addresses)."""

from amaranth.lib import data

from twinplane.model.rewrite import RewriteCommandModel

__all__ = ["RewriteCommand", "command_value"]

RewriteCommand = data.StructLayout(
    {
        "eth_dst": 48,
        "eth_src": 48,
        "tagged": 1,  # the frame has an 802.1Q tag (length-preserving: never added or removed)
        "vlan_rewrite": 1,  # a tagged frame gets vlan_id (PCP/DEI kept)
        "vlan_id": 12,
        "l3_offset": 8,
        "l4_offset": 8,
        "protocol": 8,
        "l4_valid": 1,  # the L4 header is in this frame (0: a later fragment: L3 fields only)
        "old_src_ip": 32,
        "old_dst_ip": 32,
        "old_src_port": 16,
        "old_dst_port": 16,
        "new_src_ip": 32,
        "new_dst_ip": 32,
        "new_src_port": 16,
        "new_dst_port": 16,
        "set_src_ip": 1,  # return flow / OUTBOUND (SNAT)
        "set_dst_ip": 1,  # inbound flow: the node
        "set_src_port": 1,
        "set_dst_port": 1,
        "add_offsets": 1,  # ADD_TCP_OFFSETS (TCP only)
        "seq_delta": 32,
        "ack_delta": 32,
        "drop": 1,  # the frame is consumed, nothing leaves
    }
)


def command_value(c: RewriteCommandModel) -> dict:
    """The model's command as a value for ``RewriteCommand`` (simulation, tests)."""
    return {name: int(getattr(c, name)) for name in RewriteCommand.members}
