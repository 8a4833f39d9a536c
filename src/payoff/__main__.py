"""`python -m payoff`: the `payoff` command, for when the script is not on PATH."""

from payoff.cli import main

main()
