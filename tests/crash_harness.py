"""The crash harness: SIGKILL `payoff ingest` and `payoff serve` under load at random moments.

    seed -> realistic records (record_streams) -> real processes, killed at seeded moments
         -> re-send what was not acknowledged -> compare with a clean run on a fresh ledger

`payoff ingest` acknowledges nothing until it ends, so after each kill the whole file is
ingested again, and finally once to the end. `payoff serve` acknowledges a batch with its
200 answer: clients keep sending batches of whole tasks while the server is killed and
restarted on the same port, and every batch not answered 200 is sent again once the server
is back. After each kill the harness checks, before anything is re-sent:

- every acknowledged record is stored (a missing one is *lost*);
- no batch is half stored: file ingest commits whole batches of lines in order, so what is
  stored is the first k batches of the file; a request is one transaction (*partial*).

At the end every record must be stored exactly once and the ledger must hold the same facts
(rows, tasks, cost per task, tokens per bucket) as a clean run of the same records on a
fresh ledger (ledger_facts). Everything random comes from one seed, printed by the tests,
so that a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from api_support import LiveServer, free_port, prepare_ledger, start_server
from ledger_facts import differences, integrity, ledger_facts, stored_keys
from payoff.service.ingest import BATCH_RECORDS
from record_streams import Key, Record, agent_runs, record_key, records_of

PAYOFF = str(Path(sys.executable).with_name("payoff"))
MAX_PROBLEMS = 20
"""Problems kept per run (each a sentence); the counters keep counting past them."""


@dataclass
class CrashTally:
    """What one crash run did and found; `problems` empty means every check held."""

    target: str
    seed: int
    kills: int = 0
    records: int = 0
    acknowledged_checks: int = 0
    """Acknowledged records looked for after a kill: for serve, each record once per kill;
    for ingest, the records committed by the killed runs (the most seen after a kill)."""
    lost: int = 0
    partial: int = 0
    doubled: int = 0
    cut_requests: int = 0
    """Requests that a kill cut before their answer (each is then sent again)."""
    server_errors: int = 0
    """Answers 5xx other than 503 (busy, to be retried)."""
    admin_writes: int = 0
    wrong_answers: int = 0
    orphans: int = 0
    mismatches: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def figures(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("problems", "target")}


def write_jsonl(path: Path, records: list[Record]) -> None:
    encode = msgspec.json.encode
    path.write_bytes(b"".join(encode(r) + b"\n" for r in records))


def ingest_file(db: Path, file: Path) -> dict[str, int]:
    """`payoff ingest FILE --json` to the end; its counts."""
    done = subprocess.run(
        [PAYOFF, "--db", str(db), "ingest", str(file), "--json"], capture_output=True
    )
    if done.returncode != 0:
        raise AssertionError(f"payoff ingest exited {done.returncode}: {done.stderr[-2000:]!r}")
    counts: dict[str, int] = msgspec.json.decode(done.stdout)
    return counts


def clean_run(folder: Path, records: list[Record]) -> Path:
    """A fresh ledger that `payoff ingest` gave `records` once, with nothing killed."""
    clean_file, clean_db = folder / "clean.jsonl", folder / "clean.db"
    write_jsonl(clean_file, records)
    ingest_file(clean_db, clean_file)
    return clean_db


def compare_with_clean(tally: CrashTally, clean_db: Path, db: Path) -> None:
    """The ledger `db` against the clean run's."""
    stored = stored_keys(db)
    tally.doubled = len(stored) - len(set(stored))
    if tally.doubled:
        tally.problem(f"{tally.doubled} records stored more than once")
    found = differences(ledger_facts(clean_db), ledger_facts(db))
    tally.mismatches = len(found)
    tally.problems.extend(found[: MAX_PROBLEMS - len(tally.problems)])
    if (check := integrity(db)) != "ok":
        tally.problem(f"integrity_check: {check}")


# -- payoff ingest ------------------------------------------------------------------------


def crash_ingest(folder: Path, seed: int, records: int, kills: int) -> CrashTally:
    """Kill `payoff ingest` of one file `kills` times at random moments, then finish it."""
    started = time.monotonic()
    rng = random.Random(seed)
    tally = CrashTally("payoff ingest", seed)
    data = records_of(rng, records)
    tally.records = len(data)
    keys = [record_key(r) for r in data]
    # The clean run first: how long a whole run takes bounds the moments of the kills.
    clock = time.monotonic()
    clean_db = clean_run(folder, data)
    whole_run = time.monotonic() - clock
    file, db = folder / "clean.jsonl", folder / "crashed.db"
    while tally.kills < kills:
        child = subprocess.Popen(
            [PAYOFF, "--db", str(db), "ingest", str(file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0, whole_run))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            tally.kills += 1
        child.wait()
        _check_whole_batches(tally, stored_keys(db), keys)
    counts = ingest_file(db, file)
    if counts["accepted"] + counts["duplicates"] != len(data) or not _clean(counts):
        tally.wrong_answers += 1
        tally.problem(f"the last run answered {counts} for {len(data)} valid records")
    compare_with_clean(tally, clean_db, db)
    tally.seconds = round(time.monotonic() - started, 1)
    return tally


def _clean(counts: dict[str, int]) -> bool:
    return counts["rejected"] == counts["conflicts"] == 0


def _check_whole_batches(tally: CrashTally, stored: list[Key], keys: list[Key]) -> None:
    """What a killed run left is the file's first k batches, whole: nothing half-written,
    and nothing that an earlier run committed is gone (*lost*)."""
    count = len(stored)
    if count < tally.acknowledged_checks:
        tally.lost += tally.acknowledged_checks - count
        tally.problem(f"after kill {tally.kills}: {count} records stored, fewer than before")
    tally.acknowledged_checks = max(count, tally.acknowledged_checks)
    whole = count == len(keys) or count % BATCH_RECORDS == 0
    if not whole or set(stored) != set(keys[:count]):
        tally.partial += 1
        tally.problem(f"after kill {tally.kills}: {count} records stored, not whole batches")


# -- payoff serve -------------------------------------------------------------------------


@dataclass
class _Load:
    """What the clients and the killer share."""

    tally: CrashTally
    url: str
    header: dict[str, str]
    up: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: list[list[Record]] = field(default_factory=list)
    in_flight: dict[int, list[Record]] = field(default_factory=dict)


class ServeCrash:
    """Clients sending batches to a `payoff serve` that a killer keeps killing.

    `clients` threads send batches of 1 to `max_tasks` whole tasks; `admin_writers` threads
    add customers with an admin key meanwhile. The server is killed `kills` times, 0.3 to
    1.5 s apart (with no kill, the load runs `load_seconds`).
    """

    def __init__(
        self,
        folder: Path,
        seed: int,
        *,
        clients: int = 3,
        max_tasks: int = 25,
        workers: int = 1,
        admin_writers: int = 0,
        load_seconds: float = 3.0,
    ) -> None:
        self.folder, self.rng = folder, random.Random(seed)
        self.clients, self.max_tasks = clients, max_tasks
        self.workers, self.admin_writers = workers, admin_writers
        self.load_seconds = load_seconds
        self.db, self.log = folder / "served.db", folder / "serve.log"
        keys = prepare_ledger(self.db)
        self.admin_header = keys.header(keys.admin)
        self.port = free_port()
        target = "payoff serve" if workers == 1 else f"payoff serve --workers {workers}"
        self.load = _Load(CrashTally(target, seed), "", keys.header(keys.ingest))

    def run(self, kills: int) -> CrashTally:
        started, load = time.monotonic(), self.load
        server = self._start()
        threads = [
            threading.Thread(target=self._client, args=(n, self.rng.getrandbits(64)), daemon=True)
            for n in range(self.clients)
        ] + [
            threading.Thread(target=self._admin, args=(self.rng.getrandbits(64),), daemon=True)
            for _ in range(self.admin_writers)
        ]
        for thread in threads:
            thread.start()
        try:
            for _ in range(kills):
                time.sleep(self.rng.uniform(0.3, 1.5))
                load.up.clear()
                self._kill(server)
                self._check_after_kill()
                server = self._start()
            time.sleep(self.rng.uniform(0.3, 1.0) if kills else self.load_seconds)
        finally:
            load.stop.set()
            for thread in threads:
                thread.join(timeout=120)
            _stop(server)
        records = [r for batch in load.acknowledged for r in batch]
        load.tally.records = len(records)
        compare_with_clean(load.tally, clean_run(self.folder, records), self.db)
        load.tally.seconds = round(time.monotonic() - started, 1)
        return load.tally

    def _start(self) -> LiveServer:
        server = start_server(
            self.db, self.log, "--log-level", "warning", "--workers", str(self.workers),
            port=self.port,
        )  # fmt: skip
        self.load.url = server.url
        self.load.up.set()
        return server

    def _kill(self, server: LiveServer) -> None:
        """SIGKILL the server process; its own processes must not outlive it (*orphans*).

        Orphans still serving would hold the port; they are killed here, by their ids, so
        that the run goes on and counts them.
        """
        started = descendants(server.process.pid)
        server.kill()
        self.load.tally.kills += 1
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        orphans = [pid for pid in started if alive(pid)]
        if orphans:
            self.load.tally.orphans += len(orphans)
            self.load.tally.problem(f"kill {self.load.tally.kills}: {len(orphans)} orphans")
            for pid in orphans:
                os.kill(pid, signal.SIGKILL)
            while any(alive(pid) for pid in orphans):
                time.sleep(0.05)

    def _check_after_kill(self) -> None:
        load = self.load
        stored = set(stored_keys(self.db))
        with load.lock:  # answers cannot arrive from a dead server: this list is final
            acknowledged = [record_key(r) for batch in load.acknowledged for r in batch]
            in_flight = [[record_key(r) for r in batch] for batch in load.in_flight.values()]
        load.tally.acknowledged_checks += len(acknowledged)
        lost = [key for key in acknowledged if key not in stored]
        load.tally.lost += len(lost)
        if lost:
            load.tally.problem(f"after kill {load.tally.kills}: lost {len(lost)}: {lost[:3]}")
        for keys in in_flight:
            landed = sum(key in stored for key in keys)
            if landed not in (0, len(keys)):
                load.tally.partial += 1
                load.tally.problem(f"a request cut by a kill landed {landed} of {len(keys)}")

    def _client(self, number: int, seed: int) -> None:
        rng, load = random.Random(seed), self.load
        runs = agent_runs(rng, verdicts=False)  # verdicts go signed, to another endpoint
        with httpx.Client(timeout=60) as http:
            while not load.stop.is_set():
                batch = [r for _ in range(rng.randint(1, self.max_tasks)) for r in next(runs)]
                with load.lock:
                    load.in_flight[number] = batch
                self._deliver(http, rng, batch)
                with load.lock:
                    del load.in_flight[number]
                    load.acknowledged.append(batch)

    def _deliver(self, http: httpx.Client, rng: random.Random, batch: list[Record]) -> None:
        """Send until answered 200, waiting for a restart after each failure."""
        load, tally, sent_before = self.load, self.load.tally, False
        body = _body(rng, batch)
        for _ in range(100):
            load.up.wait(timeout=120)
            try:
                response = http.post(f"{load.url}/v1/events", content=body, headers=load.header)
            except httpx.TransportError:
                with load.lock:
                    tally.cut_requests += 1
                sent_before = True
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                self._check_answer(response.json(), len(batch), sent_before)
                return
            sent_before = True
            self._unexpected(response, "a valid batch")
            time.sleep(float(response.headers.get("retry-after", "0.2")))
        tally.problem("a batch was never answered 200 in 100 attempts")

    def _unexpected(self, response: httpx.Response, what: str) -> None:
        """Count an answer that is not a success: 5xx but 503 is a server error."""
        tally, status = self.load.tally, response.status_code
        with self.load.lock:
            if status >= 500 and status != 503:
                tally.server_errors += 1
            elif status < 500:
                tally.wrong_answers += 1
            else:
                return
            tally.problem(f"{what} answered {status}: {response.text[:300]}")

    def _admin(self, seed: int) -> None:
        """An operator adding customers over HTTP while the records flow in."""
        rng, load = random.Random(seed), self.load
        with httpx.Client(timeout=60) as http:
            while not load.stop.is_set():
                load.up.wait(timeout=120)
                customer = {"id": f"adm-{rng.getrandbits(64):016x}", "name": "Added under load"}
                try:
                    response = http.post(
                        f"{load.url}/v1/customers", json=customer, headers=self.admin_header
                    )
                except httpx.TransportError:
                    continue
                with load.lock:
                    load.tally.admin_writes += 1
                if response.status_code not in (200, 201):
                    self._unexpected(response, "POST /v1/customers")
                time.sleep(rng.uniform(0, 0.05))

    def _check_answer(self, answer: dict[str, Any], count: int, sent_before: bool) -> None:
        statuses = set(answer["statuses"])
        # A request is one transaction: a re-sent one was stored whole or not at all.
        allowed = [{"accepted"}, {"duplicate"}] if sent_before else [{"accepted"}]
        if len(answer["statuses"]) != count or statuses not in allowed:
            self.load.tally.wrong_answers += 1
            self.load.tally.problem(f"answer {answer['statuses'][:5]}... re-sent={sent_before}")


def _body(rng: random.Random, batch: list[Record]) -> bytes:
    """A JSON array or JSON Lines: /v1/events takes both."""
    if rng.random() < 0.5:
        return msgspec.json.encode(batch)
    return b"".join(msgspec.json.encode(r) + b"\n" for r in batch)


def _stop(server: LiveServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


def crash_serve(folder: Path, seed: int, kills: int, **load: Any) -> CrashTally:
    """Kill `payoff serve` `kills` times under load; see ServeCrash for the load."""
    return ServeCrash(folder, seed, **load).run(kills)


def descendants(pid: int) -> list[int]:
    """Every process started by `pid`, its children's children included (Linux /proc)."""
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            found.extend(int(c) for c in children)
            queue.extend(int(c) for c in children)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def seed_from_env(name: str = "PAYOFF_CRASH_SEED") -> int:
    """The seed given in the environment (to replay a run), else a fresh one."""
    given = os.environ.get(name)
    return int(given) if given else random.SystemRandom().randrange(2**32)
