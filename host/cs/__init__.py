"""The Control Segment (CS) daemon: configuration, a sans-I/O core speaking
CSMB/SSMB to several DFSs, an asyncio adapter, health monitors, metrics and
the ``twinplane ctl`` client."""

__all__: list[str] = []
