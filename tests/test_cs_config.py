"""CS configuration: a valid file loads; invalid ones are refused naming the
file, the field and the problem."""

import pytest

from twinplane.host.cs.config import ConfigError, load_config

GOOD = """
[cs]
ssmb_port = 16350
[[dfs]]
name = "a"
address = "127.0.0.1"
key = "000102030405060708090a0b0c0d0e0f"
[[monitor]]
name = "web"
type = "http"
[[pool]]
name = "p"
method = "maglev"
monitor = "web"
[[pool.node]]
address = "10.0.0.1"
port = 80
mac = "02:00:00:00:00:01"
weight = 3
[[virtual_server]]
id = 1
address = "192.0.2.1"
port = 80
pool = "p"
"""


def write(tmp_path, text):
    path = tmp_path / "cs.toml"
    path.write_text(text)
    return path


def test_good(tmp_path):
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.dfss[0].key == bytes(range(16))
    assert cfg.pools["p"].nodes[0].mac == bytes([2, 0, 0, 0, 0, 1])
    assert cfg.pools["p"].nodes[0].weight == 3
    assert cfg.vss[1].protocol == 6
    assert cfg.cs.ssmb_port == 16350


def test_example_config_loads():
    cfg = load_config("examples/cs.toml")
    assert cfg.vss and cfg.pools and cfg.dfss


@pytest.mark.parametrize("old, new, field, problem", [
    ('key = "000102030405060708090a0b0c0d0e0f"', 'key = "0011"', "dfs[0].key", "32 hex digits"),
    ('key = "000102030405060708090a0b0c0d0e0f"', 'key = "zz0102030405060708090a0b0c0d0e0f"', "dfs[0].key",
     "32 hex digits"),
    ('mac = "02:00:00:00:00:01"', 'mac = "02:00:00"', "pool[0].node[0].mac", "not a MAC"),
    ('method = "maglev"', 'method = "random"', "pool[0].method", "unknown method"),
    ('pool = "p"', 'pool = "q"', "virtual_server[0].pool", "no [[pool]] named 'q'"),
    ('port = 80\nmac', 'port = 70000\nmac', "pool[0].node[0].port", "must be in 1..65535"),
    ('weight = 3', 'weight = "3"', "pool[0].node[0].weight", "must be an integer"),
    ('address = "10.0.0.1"', 'address = "10.0.0"', "pool[0].node[0].address", "not an IP address"),
    ('pool = "p"', 'pool = "p"\nclass = "http"', "virtual_server[0].class", "not supported yet"),
    ('type = "http"', 'type = "icmp"', "monitor[0].type", "must be 'tcp' or 'http'"),
    ('monitor = "web"', 'monitor = "nope"', "pool[0].monitor", "no [[monitor]]"),
    ('method = "maglev"', 'method = "maglev"\nmaglev_size = 65536', "pool[0].maglev_size", "must be prime"),
    ('ssmb_port = 16350', 'ssmb_port = 16350\nbogus = 1', "cs.bogus", "unknown field"),
    ('[[dfs]]\nname = "a"\naddress = "127.0.0.1"\nkey = "000102030405060708090a0b0c0d0e0f"', "", "dfs",
     "at least one"),
    ('id = 1', 'id = 0', "virtual_server[0].id", "must be in 1..65535"),
])
def test_refused(tmp_path, old, new, field, problem):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == field
    assert problem in info.value.problem
    assert str(path) in str(info.value) and field in str(info.value)


def test_syntax_and_missing(tmp_path):
    with pytest.raises(ConfigError, match="syntax"):
        load_config(write(tmp_path, "[cs\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, GOOD.replace('id = 1\n', '')))
    assert info.value.field == "virtual_server[0].id" and info.value.problem == "missing"
