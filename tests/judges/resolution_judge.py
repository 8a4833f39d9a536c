"""A judge as a contract names one: the claim (and its evidence, once opened) as JSON on
stdin, its verdict as JSON on stdout. What it does is read from the claim, for the tests:

- with evidence: accept when the evidence says `resolved` is true;
- without: reject a claim whose id has "reject" in it, accept the others;
- an id with "sleep" sleeps 30 s first; with "crash" it exits 3; with "garbage" it
  answers no JSON; with "flood" it writes 64 MB, then sleeps 30 s.
"""

from __future__ import annotations

import json
import sys
import time

request = json.load(sys.stdin)
claim = request["outcome"]["id"]
if "sleep" in claim:
    time.sleep(30)
if "crash" in claim:
    print("the judge's model is unreachable", file=sys.stderr)
    sys.exit(3)
if "flood" in claim:
    chunk = "x" * 65536
    for _ in range(1024):  # 64 MB, unless payoff stops reading and kills it first
        sys.stdout.write(chunk)
    sys.stdout.flush()
    time.sleep(30)
if "garbage" in claim:
    print("I think so")
    sys.exit(0)
evidence = request["evidence"]
if evidence is not None:
    verdict = "accept" if evidence.get("resolved") is True else "reject"
    transcript = str(evidence.get("transcript_sha256", "?"))[:12]
    reason = f"transcript {transcript}: resolved={evidence.get('resolved')}"
else:
    verdict = "reject" if "reject" in claim else "accept"
    reason = (
        "the conversation ended with the customer's thanks"
        if verdict == "accept"
        else "the customer's question was not answered"
    )
json.dump({"verdict": verdict, "reason": reason}, sys.stdout)
