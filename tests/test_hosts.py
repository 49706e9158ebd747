"""The synthetic hosts complete a connection with each other directly, and
notice a wrong answer address; scapy agrees with their frames."""

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from twinplane.model.hosts import ClientState, TcpClient, TcpServer


def converse(client, server, mangle=lambda f: f):
    wire = [("c", f) for f in client.start()]
    steps = 0
    while wire and steps < 100:
        side, frame = wire.pop(0)
        steps += 1
        if side == "c":
            wire += [("s", f) for f in server.receive(mangle(frame))]
        else:
            wire += [("c", f) for f in client.receive(mangle(frame))]
    return steps


def test_client_and_server_complete_a_connection():
    client = TcpClient("02:00:00:00:00:01", "10.2.0.1", 40000, "02:00:00:00:00:02", "10.0.0.100", 80)
    server = TcpServer("02:00:00:00:00:02", "10.0.0.100", 80, "node-a", "02:00:00:00:00:01")
    converse(client, server)
    assert client.state is ClientState.DONE, client.problems
    assert b"served by node-a" in client.answer
    assert not server.connections and server.accepted == 1


def test_client_reset_and_scapy_checks_frames():
    client = TcpClient("02:00:00:00:00:01", "10.2.0.1", 40001, "02:00:00:00:00:02", "10.0.0.100", 80, abort=True)
    server = TcpServer("02:00:00:00:00:02", "10.0.0.100", 80, "node-a", "02:00:00:00:00:01")
    frames = []
    converse(client, server, mangle=lambda f: frames.append(f) or f)
    assert client.state is ClientState.RESET
    assert not server.connections
    for frame in frames:
        packet = Ether(frame)
        ip_sum, tcp_sum = packet[IP].chksum, packet[TCP].chksum
        del packet[IP].chksum, packet[TCP].chksum
        rebuilt = Ether(bytes(packet))
        assert (rebuilt[IP].chksum, rebuilt[TCP].chksum) == (ip_sum, tcp_sum)


def test_client_notices_an_answer_from_the_wrong_address():
    client = TcpClient("02:00:00:00:00:01", "10.2.0.1", 40002, "02:00:00:00:00:02", "10.0.0.100", 80)
    server = TcpServer("02:00:00:00:00:02", "10.0.0.100", 80, "node-a", "02:00:00:00:00:01")
    syn = client.start()[0]
    synack = server.receive(syn)[0]
    # what a DFS that forgot the reverse translation would send: the node's address
    wrong = synack[:26] + bytes([10, 1, 0, 1]) + synack[30:]
    client.receive(wrong)
    assert client.state is ClientState.FAILED
    assert any("not from the virtual server" in p for p in client.problems)
