"""The event log (frames, CRC, torn tails), determinism, rebuild, and bad input via the feed."""
import io
import json
import random

import pytest

from engine.core import catalogue as catalogue_mod
from engine.core import Engine, EngineConfig
from engine.eventlog import LogReader, LogWriter, truncate_to_good
from proto.records import LogRecord
from replay.feed import run_feed

CAT = catalogue_mod.load()


def synthetic_lines(n: int, seed: int = 7) -> list[str]:
    """A seeded stream of JSON command lines on two symbols and four accounts."""
    rng = random.Random(seed)
    lines = []
    for a in range(1, 5):
        lines.append(json.dumps({"op": "createAccount", "account": a, "time": 1_700_000_000_000}))
        lines.append(json.dumps({"op": "deposit", "account": a, "amount": "1000000"}))
    mids = {"BTCUSDT": 300000, "ALLUSDT": 1000000}  # in ticks
    ticks = {"BTCUSDT": "0.1", "ALLUSDT": "0.001"}
    for i in range(n):
        sym = rng.choice(list(mids))
        mids[sym] += rng.randint(-3, 3)
        t = 1_700_000_000_000 + i * 10
        acct = rng.randint(1, 4)
        r = rng.random()
        if r < 0.25:
            lines.append(json.dumps({"op": "cancelOrder", "account": acct, "symbol": sym,
                                     "orderId": rng.randint(1, max(1, i)), "time": t}))
            continue
        side = rng.choice(["BUY", "SELL"])
        off = rng.randint(1, 20) * (-1 if side == "BUY" else 1)
        if r > 0.85:
            off = -off  # crosses
        ticks_price = mids[sym] + off
        step = 10 ** (len(ticks[sym].split(".")[1]))
        price = f"{ticks_price // step}.{ticks_price % step:0{len(ticks[sym].split('.')[1])}d}"
        qty = f"0.{rng.randint(1, 50):03d}" if sym == "BTCUSDT" else str(rng.randint(10, 200))
        lines.append(json.dumps({"op": "newOrder", "account": acct, "symbol": sym, "side": side,
                                 "type": "LIMIT", "quantity": qty, "price": price,
                                 "timeInForce": "GTC", "time": t}))
    return lines


def feed(lines, tmp_path, name="a.log", every=100, batch=1000):
    out = io.BytesIO()
    log = tmp_path / name
    res = run_feed(lines, out, CAT, EngineConfig(checkpoint_every=every), log_path=str(log),
                   batch=batch)
    return res, out.getvalue(), log


def read_all(path):
    reader = LogReader(path)
    recs = [r for _, r in reader.records()]
    return reader, recs


def test_same_command_file_gives_byte_identical_logs_and_hashes(tmp_path):
    lines = synthetic_lines(3000)
    res1, out1, log1 = feed(lines, tmp_path, "1.log")
    res2, out2, log2 = feed(lines, tmp_path, "2.log")
    assert res1.commands == 3008 and not res1.errors
    assert log1.read_bytes() == log2.read_bytes()
    assert out1 == out2
    _, recs = read_all(log1)
    hashes = [e.state_hash for r in recs for e in r.events if type(e).__name__ == "Checkpoint"]
    assert len(hashes) == 30


def test_the_log_alone_rebuilds_the_state_and_matches_every_checkpoint(tmp_path):
    lines = synthetic_lines(2000, seed=11)
    _, _, log = feed(lines, tmp_path)
    reader, recs = read_all(log)
    assert reader.problem is None and reader.header.catalogue_version == CAT.version
    rebuilt = Engine(CAT, EngineConfig(checkpoint_every=0))
    checked = 0
    for r in recs:
        rebuilt.apply_record(r.seq, r.time, r.events)
        for e in r.events:
            if type(e).__name__ == "Checkpoint":
                assert rebuilt.state_hash() == e.state_hash
                checked += 1
    assert checked == 20
    # and re-driving the logged commands reproduces the logged events byte for byte
    fresh = Engine(CAT, EngineConfig(checkpoint_every=100))
    import msgspec
    for r in recs:
        again = fresh.handle(r.command, r.seq, r.time)
        assert msgspec.msgpack.encode(again) == msgspec.msgpack.encode(r.events)
    assert fresh.state_hash() == rebuilt.state_hash()


def test_reader_stops_at_a_torn_tail_and_says_where(tmp_path):
    """One frame per batch (format 3): a torn last batch loses that batch, never acknowledged
    (the server answers only after its batch is written); the problem names the batch's first
    record and the frame's offset."""
    _, _, log = feed(synthetic_lines(200), tmp_path, batch=50)
    offsets = [off for off, _ in LogReader(log).records()]
    frames = sorted(set(offsets))
    assert len(frames) == 5 and offsets.count(frames[0]) == 50  # 208 records: 4 x 50 + 8
    n = len(offsets)
    first_of_last = offsets.index(frames[-1])
    log.write_bytes(log.read_bytes()[:-5])  # torn last batch
    reader2, recs2 = read_all(log)
    assert len(recs2) == first_of_last == 200
    assert reader2.problem.record_number == first_of_last + 1 and "torn record" in reader2.problem.what
    assert reader2.problem.offset == reader2.good_end == frames[-1]
    kept, problem = truncate_to_good(log)
    assert kept == first_of_last and problem is not None
    reader3, recs3 = read_all(log)
    assert reader3.problem is None and len(recs3) == first_of_last < n


def test_reader_detects_a_flipped_byte_by_crc(tmp_path):
    _, _, log = feed(synthetic_lines(200), tmp_path, batch=1)  # one record per frame
    offsets = [off for off, _ in LogReader(log).records()]
    data = bytearray(log.read_bytes())
    data[offsets[50] + 20] ^= 0xFF
    log.write_bytes(bytes(data))
    reader2, recs2 = read_all(log)
    assert len(recs2) == 50
    assert reader2.problem.record_number == 51 and reader2.problem.offset == offsets[50]
    assert "CRC mismatch" in reader2.problem.what


def test_a_flipped_byte_inside_a_batch_loses_the_batch_and_names_its_first_record(tmp_path):
    _, _, log = feed(synthetic_lines(300), tmp_path, batch=100)
    offsets = [off for off, _ in LogReader(log).records()]
    second = sorted(set(offsets))[1]
    first_record = offsets.index(second) + 1
    data = bytearray(log.read_bytes())
    data[second + 500] ^= 0x10
    log.write_bytes(bytes(data))
    reader, recs = read_all(log)
    assert len(recs) == first_record - 1 == 100
    assert (reader.problem.record_number, reader.problem.offset) == (first_record, second)
    assert "CRC mismatch" in reader.problem.what


def test_format_3_is_positional_and_smaller_than_maps(tmp_path):
    """A batch is a msgpack array of [seq, time, [op, ...], [[e, ...], ...]]."""
    import msgspec
    from engine.eventlog.frames import FRAME
    from proto.positional import as_map
    _, _, log = feed(synthetic_lines(300), tmp_path)
    data = log.read_bytes()
    reader = LogReader(log)
    start = reader.read_header()
    assert reader.header.format_version == 3
    length, _ = FRAME.unpack_from(data, start)
    batch = msgspec.msgpack.decode(data[start + FRAME.size:start + FRAME.size + length])
    seq, time, command, events = batch[0]
    assert (seq, command[0], events[0][0]) == (1, "createAccount", "accountCreated")
    records = [r for _, r in reader.records()]
    as_maps = sum(len(msgspec.msgpack.encode(as_map(r))) + 8 for r in records)
    assert len(data) < 0.6 * as_maps


def test_writer_appends_batches_after_the_header(tmp_path):
    path = tmp_path / "w.log"
    eng = Engine(CAT)
    from proto import commands as C
    w = LogWriter(path, CAT.version, fsync=True)
    cmd = C.CreateAccount(account=1)
    w.append([LogRecord(seq=1, time=5, command=cmd, events=eng.handle(cmd, 1, 5))])
    w.close()
    w = LogWriter(path, CAT.version)  # reopen appends, no second header
    cmd = C.Deposit(account=1, amount=10)
    w.append([LogRecord(seq=2, time=6, command=cmd, events=eng.handle(cmd, 2, 6))])
    w.close()
    _, recs = read_all(path)
    assert [r.seq for r in recs] == [1, 2]


BAD_LINES = [
    ("{not json", -1100),
    ('{"op": "launchRocket", "account": 1}', -1103),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "30000"}', -1102),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "30000", "colour": "red"}', -1103),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "UP", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "30000"}', -1102),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": 0.5, "price": "30000"}', -1102),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1e3", "price": "30000"}', -1102),
    ('{"op": "deposit", "account": 1, "amount": "0.000000001"}', -1111),
    ('[1, 2, 3]', -1102),
    # Binance: price and timeInForce are mandatory for LIMIT; the edge refuses them unsent
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "30000"}', -1102),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "timeInForce": "GTC"}', -1102),
]

REJECTED_LINES = [
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0", "price": "30000", "timeInForce": "GTC"}', -4003),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "-1", "price": "30000", "timeInForce": "GTC"}', -4003),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "30000.05", "timeInForce": "GTC"}', -4014),
    ('{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "STOP_MARKET", "quantity": "0.001"}', -4120),
    ('{"op": "newOrder", "account": 1, "symbol": "DOGECOINUSDT", "side": "BUY", "type": "LIMIT", "quantity": "1", "price": "1", "timeInForce": "GTC"}', -1121),
    ('{"op": "cancelOrder", "account": 2, "symbol": "BTCUSDT", "orderId": 1}', -2011),
]

SETUP = [
    '{"op": "createAccount", "account": 1}', '{"op": "createAccount", "account": 2}',
    '{"op": "deposit", "account": 1, "amount": "10000"}',
    '{"op": "newOrder", "account": 1, "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.001", "price": "29000", "timeInForce": "GTC"}',
]


@pytest.mark.parametrize("line,code", BAD_LINES)
def test_bad_lines_get_an_error_and_never_reach_the_core_or_log(tmp_path, line, code):
    res, out, log = feed(SETUP + [line] + ['{"op": "deposit", "account": 2, "amount": "1"}'], tmp_path)
    assert [(e[0], e[1]) for e in res.errors] == [(5, code)]
    printed = [json.loads(x) for x in out.splitlines()]
    errors = [p for p in printed if "error" in p]
    assert errors[0]["error"]["line"] == 5 and errors[0]["error"]["msg"]
    _, recs = read_all(log)
    assert len(recs) == len(SETUP) + 1  # the bad line left no record; the next line still ran
    assert type(recs[-1].command).__name__ == "Deposit"


@pytest.mark.parametrize("line,code", REJECTED_LINES)
def test_rejected_commands_log_only_a_rejection_and_change_nothing(tmp_path, line, code):
    _, _, base_log = feed(SETUP, tmp_path, "base.log")
    _, base = read_all(base_log)
    res, out, log = feed(SETUP + [line], tmp_path, "x.log")
    assert not res.errors
    _, recs = read_all(log)
    last = recs[-1]
    assert [type(e).__name__ for e in last.events] in (["OrderRejected"], ["CommandRejected"])
    assert last.events[0].code == code
    a, b = Engine(CAT), Engine(CAT)
    for r in base:
        a.apply_record(r.seq, r.time, r.events)
    for r in recs:
        b.apply_record(r.seq, r.time, r.events)
    assert a.state_hash() == b.state_hash()
