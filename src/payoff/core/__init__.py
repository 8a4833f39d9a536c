"""The pure core of payoff: values in, values out.

Nothing here does I/O, reads the clock or the environment, logs, or uses float. Money and
cost are `Decimal` or integers at a fixed scale (see `payoff.core.money`). A test walks the
imports of this package and fails if anything outside the standard library appears.
"""
