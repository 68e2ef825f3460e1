"""Every command block of the README runs, so it cannot rot (issue 11).

A fenced block's info string says how it is run:
    text        a picture, not commands (not run)
    sh          the "Two commands": `make run` is started (in a temporary directory's log and
                keys) and stopped with SIGTERM; `make test` is this suite and is not run again
    sh run      each `make run ARGS="..."` line is started (its own port, log and keys added)
                until the market simulator is running, then stopped with SIGTERM; `#` lines
                are comments
    sh server   each line against a server this test starts; each must exit 0
    console     `$ ` lines run in bash in a temporary directory, as the README's reader would;
                the lines after one are its expected output (stdout and stderr, "..." matches
                anything); "(exit status N)" in its comment is the status expected, else 0
    console api the same beside a server with Binance's API that this test starts (its keys
                in var/keys.json, $PERPENGINE_PORT and $PERPENGINE_API pointing at it; random
                keys and ids are "…" in the README)
    python      a snippet of an example bot: it compiles (dedented), and its first line names
                the file in examples/ whose lines it shows, in order (so it cannot drift from
                the bot the `console api` blocks run)
    jsonl       a feed file, saved under the name the text before it gives; it must run clean
    nc          a protocol transcript: the typed lines are sent to a fresh server (the login
                signed for real) and every answer must match the README's ("…" matches
                anything; nonces and times are free)
The `python` of the commands is the project's (.venv/bin first on PATH), as the README says.
"""
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from proto import wire
from tests.api_harness import ApiServerProcess
from tests.test_gateway import ROOT as _ROOT, ServerProcess

ROOT = Path(_ROOT)
README = (ROOT / "README.md").read_text()
KINDS = {"text", "sh", "sh run", "sh server", "console", "console api", "jsonl", "nc", "python"}


def blocks() -> list[tuple[str, list[str], int]]:
    """(info string, lines, line number) of every fenced block."""
    out, info, lines, start = [], None, [], 0
    for n, line in enumerate(README.splitlines(), start=1):
        if line.startswith("```"):
            if info is None:
                info, lines, start = line[3:].strip(), [], n
            else:
                out.append((info, lines, start))
                info = None
        elif info is not None:
            lines.append(line)
    assert info is None, "an unclosed block"
    return out


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e.get('PATH', '')}"
    return e


def workdir(tmp_path: Path) -> Path:
    """A directory like the project's root for a reader: replay/examples reachable."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "replay").symlink_to(ROOT / "replay")
    (work / "examples").symlink_to(ROOT / "examples")
    return work


def _pattern(expected: list[str]) -> re.Pattern:
    parts = [re.escape(line).replace(r"\.\.\.", ".*").replace("…", ".*") for line in expected]
    return re.compile(r"\s*".join(parts), re.S)


def test_every_block_is_of_a_kind_this_test_runs():
    found = [(info, start) for info, _, start in blocks()]
    assert all(info in KINDS for info, _ in found), [f for f in found if f[0] not in KINDS]
    kinds = {info for info, _ in found}
    assert kinds == KINDS  # and each kind is there (so each runner below is exercised)


def run_console(lines: list[str], start: int, work: Path, environ: dict) -> int:
    """Run a console block's `$ ` lines in `work`, checking statuses and outputs; returns how
    many commands ran."""
    ran = 0
    i = 0
    while i < len(lines):
        assert lines[i].startswith("$ "), (start + i, lines[i])
        command = lines[i][2:]
        expected = []
        i += 1
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        status = re.search(r"\(exit status (\d+)\)", command)
        out = subprocess.run(["bash", "-c", command], cwd=work, env=environ,
                             capture_output=True, text=True, timeout=120)
        text = out.stdout + out.stderr
        assert out.returncode == (int(status.group(1)) if status else 0), \
            f"README line {start + i}: {command}\n{text}"
        if expected:
            assert _pattern(expected).search(text), \
                f"README line {start + i}: {command}\nexpected:\n" + "\n".join(expected) + \
                f"\ngot:\n{text}"
        ran += 1
    return ran


def test_console_blocks_run_as_written(tmp_path):
    work = workdir(tmp_path)
    ran = 0
    for info, lines, start in blocks():
        if info == "jsonl":  # a feed file the next console block uses
            before = README.splitlines()[start - 3]
            name = re.search(r"`([\w.-]+\.jsonl)`", before).group(1)
            (work / name).write_text("\n".join(lines) + "\n")
            continue
        if info == "console":
            ran += run_console(lines, start, work, env())
    assert ran >= 8


def test_api_console_blocks_run_beside_a_server(tmp_path):
    """The `console api` blocks: newkey and the example bots against a real server."""
    work = workdir(tmp_path)
    (work / "var").mkdir()
    server = ApiServerProcess(work / "var")  # its keys in var/keys.json, as the README says
    try:
        e = env()
        e["PERPENGINE_PORT"] = str(server.port)
        e["PERPENGINE_API"] = server.url
        ran = sum(run_console(lines, start, work, e)
                  for info, lines, start in blocks() if info == "console api")
        assert ran >= 12
    finally:
        assert server.stop() == 0


def test_python_blocks_compile_and_are_the_examples(tmp_path):
    found = 0
    for info, lines, start in blocks():
        if info != "python":
            continue
        # an excerpt from inside a block of its file keeps that indentation: dedented to compile
        compile(textwrap.dedent("\n".join(lines[1:])), f"README line {start}", "exec")
        m = re.fullmatch(r"# from (examples/[\w.-]+\.py)", lines[0])
        assert m, f"README line {start}: the first line names its example file"
        example = [x for x in (ROOT / m.group(1)).read_text().splitlines() if x.strip()]
        pos = 0
        for line in lines[1:]:
            if not line.strip():
                continue
            assert line in example[pos:], f"README line {start}: {line!r} is not (in this " \
                                          f"order) in {m.group(1)}"
            pos = example.index(line, pos) + 1
        found += 1
    assert found >= 4


def test_the_feed_example_is_accepted_whole(tmp_path):
    (info, lines, start), = [b for b in blocks() if b[0] == "jsonl"]
    out = subprocess.run([sys.executable, "-m", "replay", "feed", "-"], input="\n".join(lines),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    events = [json.loads(x) for x in out.stdout.splitlines()]
    assert not [e for e in events if e.get("e") in ("orderRejected", "commandRejected")]
    assert any(e.get("query") == "positionRisk" for e in events)


def test_the_client_commands_run_against_a_server(tmp_path):
    work = workdir(tmp_path)
    (work / "var").mkdir()
    server = ServerProcess(work / "var")  # its keys in var/keys.json, as the README says
    server_keys = work / "var" / "keys.json"
    assert server.keys_path == server_keys
    try:
        e = env()
        e["PERPENGINE_PORT"] = str(server.port)
        (lines,) = [lines for info, lines, _ in blocks() if info == "sh server"]
        for line in lines:
            command = line.replace("--timeout 30", "--timeout 1")  # the watch, on an idle server
            out = subprocess.run(["bash", "-c", command], cwd=work, env=e, capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, f"{line}\n{out.stdout}{out.stderr}"
            assert "Traceback" not in out.stderr
    finally:
        assert server.stop() == 0


async def test_the_protocol_transcript_is_true(tmp_path):
    (lines,) = [lines for info, lines, _ in blocks() if info == "nc"]
    server = ServerProcess(tmp_path)
    try:
        admin = await server.admin_client()
        await admin.request("createAccount", account=7, registeredAt=0)
        await admin.request("deposit", account=7, amount="10000")
        key = await admin.request("createApiKey", account=7)
        await admin.close()
        r, w = await asyncio.open_connection("127.0.0.1", server.port)
        assert lines[0].startswith("$ nc ")
        nonce = None
        checked = 0
        for line in lines[1:]:
            typed = '"op":' in line
            if typed:
                req = json.loads(line)
                if req["op"] == "login":
                    req.update(apiKey=key["apiKey"], signature=wire.sign(key["secret"], nonce))
                w.write(json.dumps(req).encode() + b"\n")
                await w.drain()
                continue
            got = (await asyncio.wait_for(r.readline(), 5)).decode().strip()
            # values that differ on every run: the nonce and the times
            free = re.sub(r'"(nonce|E|updateTime)":("[0-9a-f]+"|\d+)', r'"\1":FREEVALUE', line)
            pattern = re.escape(free).replace("…", ".*")
            pattern = pattern.replace("FREEVALUE", r'("[0-9a-f]+"|\d+)')
            assert re.fullmatch(pattern, got), f"\nexpected {line}\ngot      {got}"
            if nonce is None:
                nonce = json.loads(got)["nonce"]
            checked += 1
        assert checked == 7
        w.close()
    finally:
        assert server.stop() == 0


def test_make_run_serves_and_stops_cleanly_and_make_test_is_this_suite(tmp_path):
    (info, lines, _), = [b for b in blocks() if b[0] == "sh"]
    commands = [line.split("#")[0].strip() for line in lines]
    assert [c for c in commands if c] == ["make run", "make test"]  # (comment lines aside)
    args = f"--port 0 --log {tmp_path}/engine.log --keys {tmp_path}/keys.json"
    proc = subprocess.Popen(["make", "--no-print-directory", "run", f"ARGS={args}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]  # make echoes the command first
        assert "serving on 127.0.0.1:" in lines[1], lines
        os.killpg(proc.pid, signal.SIGTERM)  # what Ctrl-C does to the terminal's group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "stopped cleanly" in out, out + err
    assert "Traceback" not in err


def test_make_run_examples_start_the_market_they_name(tmp_path):
    runs = [line.strip() for info, lines, _ in blocks() if info == "sh run"
            for line in lines if line.strip() and not line.strip().startswith("#")]
    assert len(runs) == 4
    for n, line in enumerate(runs):
        m = re.fullmatch(r'make run ARGS="([^"]*)"', line)
        assert m, line
        args = (f"{m.group(1)} --port 0 --api-port 0 --log {tmp_path}/{n}.log"
                f" --keys {tmp_path}/{n}.json")
        proc = subprocess.Popen(["make", "--no-print-directory", "run", f"ARGS={args}"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            seen = []
            while not any(x.startswith("market: simulating") for x in seen):
                out = proc.stdout.readline()
                assert out, "".join(seen)  # the server exited before the market ran
                seen.append(out)
            os.killpg(proc.pid, signal.SIGTERM)
            rest, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        text = "".join(seen) + rest
        assert "stopped cleanly" in text and "Traceback" not in text, text
