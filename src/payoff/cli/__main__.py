"""`python -m payoff.cli`: the `payoff` command, for when the script is not on PATH."""

from payoff.cli import main

main()
