"""verify: prove a log intact. Every record's CRC and sequence number, then the whole state
(books, accounts, positions, insurance fund) rebuilt from the events alone, compared with the
state hash of every checkpoint. The first problem is reported precisely: record number (1-based,
after the header), byte offset of its frame, what was expected and what was found."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.core.catalogue import Catalogue
from engine.core import Engine
from engine.eventlog import LogReader, Problem, open_reader
from engine.core.gcpause import without_gc
from proto.records import EventsRecord
from replay.common import Progress, config_from_header


@dataclass
class VerifyReport:
    path: str
    intact: bool = False
    unreadable: bool = False
    problem: dict | None = None
    records: int = 0
    events: int = 0
    checkpoints: int = 0
    last_seq: int = 0
    state_hash: str = ""
    accounts: int = 0
    resting_orders: int = 0
    insurance_fund: int = 0
    format_version: int = 0
    catalogue_version: str = ""
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stream: str = ""  # a JetStream log: its writers and fences

    def as_dict(self) -> dict:
        return asdict(self)


@without_gc
def verify(path: str | Path, catalogue: Catalogue, progress: bool = True,
           engine_out: list | None = None) -> VerifyReport:
    report = VerifyReport(path=str(path))
    reader = open_reader(path)
    engine: Engine | None = None
    expected = 1
    meter = None
    problem: Problem | None = None
    n = 0  # the number of the record at hand
    events = 0
    batches = reader.batches(EventsRecord)  # the commands stay undecoded: not needed here
    for offset, batch in batches:  # a frame's records at a time
        if engine is None:
            engine = Engine(catalogue, config_from_header(reader.header, checkpoint_every=0))
            meter = Progress(reader.size, progress, "verify")
            _header_facts(report, reader, catalogue)
        i = 0
        size = len(batch)
        while i < size:  # the core applies records until a checkpoint or a gap in seq
            applied, evs, checkpoint = engine.apply_records(batch, i, expected)
            i += applied
            n += applied
            expected += applied
            events += evs
            if checkpoint is not None:  # the last record applied carried it
                rebuilt = engine.state_hash()
                if rebuilt != checkpoint.state_hash:
                    problem = Problem(n, offset, f"checkpoint at seq {checkpoint.seq}: expected "
                                                 f"state hash {checkpoint.state_hash}, rebuilt "
                                                 f"{rebuilt}")
                    n -= 1
                    expected -= 1
                    break
                report.checkpoints += 1
            elif i < size:  # batch[i] is out of sequence
                seq = batch[i].seq
                later = _find_later(_records_after(batch, i, batches), expected)
                what = (f"record out of order (seq {expected} comes {later} records later)"
                        if later else "missing record(s)")
                problem = Problem(n + 1, offset, f"{what}: expected seq {expected}, found seq "
                                                 f"{seq}")
                break
        if problem:
            report.records = n
            report.last_seq = expected - 1
            break
        report.records = n
        report.last_seq = expected - 1
        meter.tick(offset, len(batch))
    report.events = events
    if engine is None:  # no good record at all
        _header_facts(report, reader, catalogue)
        engine = Engine(catalogue)
    problem = problem or reader.problem
    if problem is not None:
        report.problem = asdict(problem)
        report.unreadable = problem.record_number == 0
    report.intact = problem is None
    report.state_hash = engine.state_hash()
    report.accounts = len(engine.accounts)
    report.resting_orders = sum(len(s.book.orders) for s in engine.symbols.values())
    report.insurance_fund = engine.ledger.insurance_fund
    report.seconds = round(meter.done(), 4) if meter else 0.0
    if hasattr(reader, "fences"):  # JetStream: positions are stream sequences
        report.stream = (f"stream: {reader.good_end} messages read; writers "
                         f"{', '.join(reader.writers) or '-'}; fences at stream seq "
                         f"{', '.join(str(s) for s, _ in reader.fences) or '-'}")
    if engine_out is not None:
        engine_out.append(engine)
    return report


def _records_after(batch: list, i: int, batches):
    """The records after batch[i]: the rest of its batch, then the later batches'."""
    yield from batch[i + 1:]
    for _, later in batches:
        yield from later


def _find_later(records, seq: int, horizon: int = 1000) -> int:
    """How many records further on `seq` appears (0: not within the horizon)."""
    for i, record in enumerate(records, start=1):
        if record.seq == seq:
            return i
        if i >= horizon:
            break
    return 0


def _header_facts(report: VerifyReport, reader: LogReader, catalogue: Catalogue) -> None:
    if reader.header is None:
        return
    report.format_version = reader.header.format_version
    report.catalogue_version = reader.header.catalogue_version
    if reader.header.catalogue_version != catalogue.version:
        report.warnings.append(f"log written with catalogue {reader.header.catalogue_version}, "
                               f"verifying with {catalogue.version}")
