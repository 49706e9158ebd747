"""Simulation bridge: connect a simulated DFS's packet-stream ports to Python
queues, TAP interfaces, pcap files and a UDP message-port gateway."""
