"""How long the OpenTelemetry receiver waits before it judges: the settle time and the idle
timeout (payoff.service.otlp).

A module of its own, without the receiver's imports, so that the command line and the
server's settings can read the defaults without loading OpenTelemetry.
"""

from __future__ import annotations

DEFAULT_SETTLE_S = 10.0
"""A trace that received nothing for this long, its root arrived, is judged: twice the
OpenTelemetry SDKs' batch export interval (5 s), so that a span ending just after its run
(a stream read after the agent returned) arrives in time, in the next export. 0 judges a
run as its root arrives."""
DEFAULT_IDLE_TIMEOUT_S = 1_800
"""A trace or conversation that received nothing for this long is judged as it is: half an
hour, the usual length of a quiet web session."""
MIN_IDLE_TIMEOUT_S = 1
