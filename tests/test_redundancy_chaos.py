"""Chaos with real processes (docs/redundancy.md): two `twinplane cs` daemons
(active + standby, HELLO every 100 ms) and a SoftDFS over loopback UDP with
synthetic TCP hosts (host/cs/failover.py).  kill -9 of the active during
traffic, the standby's death, both killed and restarted, and a DFS reset with
connections open: no established connection may be lost."""

import asyncio

import pytest

from twinplane.host.cs.failover import SCENARIOS, run_failover, to_toml


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_chaos(scenario, tmp_path):
    result = asyncio.run(run_failover(scenario, workdir=str(tmp_path), settle_s=0.5))
    print(result)
    assert result["established_lost"] == 0, result
    assert result["new_flows_failed_after_takeover"] == 0 and result["new_flows_after_takeover"] > 0, result
    assert result["new_flows_failed_before"] == 0, result
    if scenario == "active_killed":
        assert result["active_cs"] == [2] and result["dfs_epoch"] == 2, result
        assert result["takeover_ms"] is not None and result["takeover_ms"] < 1000, result
        assert result["new_flows_failed_during_takeover"] == 0, result
    elif scenario == "standby_killed":
        assert result["active_cs"] == [1] and result["dfs_epoch"] == 1, result
        assert result["new_flows_failed_during_takeover"] == 0, result
    elif scenario == "both_killed":
        # Whichever process comes up first may be the active one (the standby
        # takes over after its grace if it is alone); exactly one is.
        assert len(result["active_cs"]) == 1 and result["recovery_ms"] is not None, result
    else:
        assert result["active_cs"] == [1] and result["recovery_ms"] is not None, result


def test_toml_writer_round_trips():
    import tomllib

    data = {"a": {"b": 1, "c": "x\"y", "d": ["p", "q"], "e": True}, "t": [{"n": 1.5}, {"n": 2}]}
    assert tomllib.loads(to_toml(data)) == data
    with pytest.raises(TypeError, match="cannot write None"):
        to_toml({"x": None})
