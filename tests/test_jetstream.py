"""The log on NATS JetStream (issue 17), the fast part: a real nats-server on 127.0.0.1 (started
here, stopped by PID; without nats-server installed these tests fail and say how to install it),
the writer's fencing and retries, the whole order flow through a server on the stream with
replay reading it back, a second active refused, a durable consumer restarted mid-stream. The
failover, cluster and replica tests are in test_jetstream_slow.py."""
from __future__ import annotations

import asyncio

import pytest

from engine.bench.natsservers import NatsServers
from engine.core import catalogue as catalogue_mod
from engine.eventlog import open_reader
from engine.eventlog.jetstream import (Fenced, JetStreamLog, JetStreamReader, JetStreamWriter,
                                       LogSpecError, ResumingFeed, new_header, parse_spec)
from engine.riskconsumer import RiskConsumer
from replay.__main__ import main as replay_main
from replay.redrive import redrive
from replay.verify import verify
from tests.jsharness import NatsServer, reap
from tests.test_gateway import order
from tests.test_risk import _recorded_session

CAT = catalogue_mod.load()


@pytest.fixture(scope="module")
def nats_node():
    with NatsServers(1) as node:
        yield node


def test_log_specs_are_checked():
    spec = parse_spec("nats://127.0.0.1:4222,127.0.0.1:4223/PERP?replicas=3")
    assert spec.servers == ("nats://127.0.0.1:4222", "nats://127.0.0.1:4223")
    assert (spec.stream, spec.subject, spec.replicas) == ("PERP", "PERP.log", 3)
    for bad in ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222/A.B", "nats:///PERP",
                "nats://h:1/P?replicas=2", "nats://h:1/P?replica=3"):
        with pytest.raises(LogSpecError):
            parse_spec(bad)


async def test_a_second_writer_fences_the_first_and_a_retry_is_stored_once(nats_node):
    log = JetStreamLog(nats_node.spec("FENCE"))
    await log.connect()
    await log.ensure_stream()
    header = await log.write_header(new_header(CAT.version, {"rules": 2}))
    assert header.engine_config == {"rules": 2}
    assert (await log.write_header(new_header(CAT.version, {}))) == header  # the first one wins
    records = _recorded_session()
    first = JetStreamWriter(log, await log.last_seq())
    await first.append(records[:10])
    # a PubAck lost after JetStream stored the batch: the same Nats-Msg-Id again is a duplicate
    blob = first._messages(records[10:12])[0]
    seq = await first.publish(blob)
    first.batches -= 1
    first.last -= 1
    assert await first.publish(blob) == seq  # acknowledged with the original sequence
    assert await log.last_seq() == seq  # and stored once
    second = JetStreamWriter(log, first.last)
    fence = await second.fence()
    with pytest.raises(Fenced):
        await first.append(records[12:14])
    with pytest.raises(Fenced):  # and stays fenced
        await first.append(records[12:14])
    await second.append(records[12:14])
    assert await log.last_seq() == fence + 1
    await log.close()
    reader = JetStreamReader(nats_node.spec("FENCE"))
    got = [r for _, r in reader.records()]
    assert [r.seq for r in got] == [r.seq for r in records[:14]]
    assert reader.problem is None and reader.fences == [(fence, second.writer_id)]
    assert reader.writers == [first.writer_id, second.writer_id]
    # a reader that starts after a record finds its batch by a binary search
    later = JetStreamReader(nats_node.spec("FENCE"), after=11)
    assert [r.seq for _, r in later.records()][0] <= 12


async def test_the_order_flow_on_jetstream_and_replay_reads_it_back(nats_node, tmp_path, capsys):
    spec = nats_node.spec("FLOW")
    keys = tmp_path / "keys.json"
    server = second = restarted = None
    try:
        server = NatsServer(tmp_path, spec, "a", keys, "--snapshot-every", "20")
        assert "JetStream PubAck per batch" in server.lines[0]
        admin = await server.admin_client()
        for a in (1, 2):
            await admin.request("createAccount", account=a, registeredAt=0)
            await admin.request("deposit", account=a, amount="1000000")
        await admin.request("setMarkPrice", symbol="BTCUSDT", markPrice="30000")
        rested = await admin.request("newOrder", account=1, **order("BUY", "0.010", "30000"))
        assert rested["status"] == "NEW"
        filled = await admin.request("newOrder", account=2, **order("SELL", "0.004", "30000"))
        assert filled["status"] == "FILLED" and filled["trades"] == 1
        canceled = await admin.request("cancelOrder", account=1, symbol="BTCUSDT",
                                       orderId=rested["orderId"])
        assert canceled["status"] == "CANCELED"
        futures = [admin.request("newOrder", account=1 + i % 2,
                                 **order("BUY" if i % 2 else "SELL", "0.001",
                                         str(29000 + i) if i % 2 else str(31000 + i)))
                   for i in range(200)]  # pipelined: several batches in flight
        replies = await asyncio.gather(*futures)
        assert all(r["status"] == "NEW" for r in replies)
        state = await admin.query("state")
        # a second active on the same stream is refused (the first one's heartbeat)
        second = NatsServer.__new__(NatsServer)
        from tests.jsharness import Proc
        Proc.__init__(second, ["serve", "--port", "0", "--log", spec, "--keys",
                               str(tmp_path / "keys2.json")], tmp_path / "b.stderr")
        assert second.proc.wait(30) == 1
        assert "another server is writing FLOW" in (tmp_path / "b.stderr").read_text()
        await admin.close()
        assert server.stop() == 0
        # replay reads the stream: intact, identical when re-driven, the same state
        report = verify(spec, CAT, progress=False)
        assert report.intact and report.last_seq == state["seq"]
        assert report.state_hash == state["stateHash"]
        assert redrive(spec, CAT, progress=False).identical
        assert replay_main(["verify", spec]) == 0
        assert "writers w" in capsys.readouterr().out
        # a restart recovers from its snapshot plus the stream's tail and carries on
        restarted = NatsServer(tmp_path, spec, "a", keys)
        assert "from snapshot snapshot-" in restarted.lines[0]
        admin = await restarted.admin_client()
        assert (await admin.query("state")) == state
        more = await admin.request("newOrder", account=1, **order("BUY", "0.001", "29500"))
        assert more["seq"] == state["seq"] + 1
        await admin.close()
        assert restarted.stop() == 0
        assert verify(spec, CAT, progress=False).intact
        assert replay_main(["restore", spec, "--snapshots", str(tmp_path / "a.snapshots")]) == 0
    finally:
        reap(server, second, restarted)


async def test_a_durable_consumer_restarted_mid_stream_catches_up_to_the_same_projection(
        nats_node):
    records = _recorded_session()
    spec = nats_node.spec("RISK")
    log = JetStreamLog(spec)
    await log.connect()
    await log.ensure_stream()
    await log.write_header(new_header(CAT.version, {}))
    writer = JetStreamWriter(log, await log.last_seq())
    for i in range(0, len(records), 4):  # batches of four records
        await writer.append(records[i:i + 4])
    straight = RiskConsumer(CAT)
    for r in records:
        straight.process(r)

    async def consume(consumer: RiskConsumer, stop_after: int | None) -> tuple[int, int]:
        """Follow the durable; (records answered, records replayed silently)."""
        conn = JetStreamLog(spec)
        await conn.connect()
        feed = ResumingFeed(conn, "risk-test")
        await feed.wait_header()
        await feed.start()
        answered = replayed = handled = 0
        while consumer.last_seq < records[-1].seq and (stop_after is None or
                                                       handled < stop_after):
            entries = await feed.next(1.0)
            for entry in entries:
                for r in entry.records:
                    consumer.process(r)
                    if feed.replaying(entry):
                        replayed += 1
                    else:
                        answered += 1
                handled += 1
                await feed.ack(entry)
                if stop_after is not None and handled >= stop_after:
                    break
        await conn.close()  # a crash: the connection goes, nothing else is said
        return answered, replayed

    first = RiskConsumer(CAT)
    answered, replayed = await consume(first, stop_after=5)
    assert replayed == 0 and 0 < answered < len(records)
    await asyncio.sleep(0.3)  # the acknowledgements reach the server
    resumed = RiskConsumer(CAT)  # a new process: nothing in memory
    answered2, replayed2 = await consume(resumed, stop_after=None)
    assert replayed2 >= 5 * 4 - 4  # its predecessor's records are rebuilt, not answered again
    assert answered2 == len(records) - replayed2
    assert resumed.projection_hash() == straight.projection_hash()
    await log.close()


def test_open_reader_reads_a_file_or_a_stream(tmp_path, nats_node):
    from engine.eventlog import LogReader
    assert isinstance(open_reader(tmp_path / "x.log"), LogReader)
    reader = open_reader(nats_node.spec("NOSUCH"))
    assert list(reader.records()) == [] and "no stream NOSUCH" in reader.problem.what
