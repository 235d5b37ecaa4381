"""A simulated machine PLC speaking Modbus TCP (a real pymodbus server on 127.0.0.1).

Register map of the machine (unit id = first of `units`, default 1; all values big-endian ABCD):

    holding 0        state code: 1 running, 2 idle, 3 down, 4 setup   (uint16)
    holding 1        alarm code while down (0 none, 1 scripted fault, 100 random stop)
    holding 2        cycle time in ms                                  (uint16)
    holding 10..13   good-part counter, `counter_type` uint16 (10), uint32 (10-11), uint64 (10-13)
    holding 14..17   scrap counter, same type and layout as the good counter
    input   0..17    a read-only mirror of holding 0..17
    discrete 0       running (state == 1)
    discrete 1       down (state == 3)
    everything else  free memory (`size` addresses per table, default 2000) for tests/benchmarks

Every table of every unit id holds `size` addresses; other unit ids are plain memory.
Addresses made illegal with `set_holes` answer exception 2 (illegal data address); for coils and
discrete inputs a hole is checked per 16-bit word (how the pymodbus datastore packs bits).

Scenario (YAML or JSON): a list of steps, or {"steps": [...]}, each `{"at": seconds, "do": ...}`:

    do: down        for: 5         go DOWN (alarm 1), back to RUNNING after `for` s (omit: stay)
    do: run | idle | setup         force a state
    do: set_counter counter: good value: 65530      preset a counter (rollover tests)
    do: reset_counter counter: good                 counter to 0
    do: holes       start: 100 count: 5 [table: holding_register] [unit: 1]
    do: clear_holes
    do: stall       [for: 3]       accept requests but stop answering them
    do: close       [for: 3]       stop the server (connections drop); reopen after `for` s

Command line: `python -m simulators.modbus_plc --port 5020 --scenario s.yaml --cycle-time 0.5`
(`--size 12000 --churn 1000:10000:0.1` hosts 10,000 changing registers for benchmarks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import time
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from simulators.machine import Machine, MachineState

log = logging.getLogger("simulators.modbus_plc")

TABLES = ("coil", "discrete_input", "holding_register", "input_register")
_BIT_TABLES = ("coil", "discrete_input")
#: Function code -> table, as the pymodbus datastore maps them.
_FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete_input", 4: "input_register",
             3: "holding_register", 6: "holding_register", 16: "holding_register",
             22: "holding_register", 23: "holding_register"}

HR_STATE, HR_ALARM, HR_CYCLE_MS, HR_GOOD, HR_SCRAP = 0, 1, 2, 10, 14
_COUNTER_WORDS = {"uint16": 1, "uint32": 2, "uint64": 4}


class UnitMemory:
    """The four tables of one unit id, plus the mask of illegal (hole) addresses."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.tables: dict[str, list[Any]] = {
            "coil": [False] * size, "discrete_input": [False] * size,
            "holding_register": [0] * size, "input_register": [0] * size,
        }
        self.holes: dict[str, bytearray] = {t: bytearray(size) for t in TABLES}

    def has_hole(self, table: str, start: int, count: int) -> bool:
        """True when any address in [start, start+count) is illegal."""
        return self.holes[table].find(1, start, start + count) >= 0


class ModbusPlc:
    """A Modbus TCP PLC simulator; use `async with ModbusPlc(port=...) as plc:`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 5020,
        units: tuple[int, ...] = (1,),
        size: int = 2000,
        machine: Machine | None = None,
        cycle_time: float = 0.0,
        counter_type: str = "uint32",
        seed: int = 1,
        scenario: list[dict[str, Any]] | None = None,
    ) -> None:
        if size % 16:
            size += 16 - size % 16  # bit tables are packed in 16-bit words
        self.host, self.port, self.units, self.size = host, port, tuple(units), size
        self.machine = machine or Machine(cycle_time=cycle_time, counter_type=counter_type,
                                          seed=seed)
        self.memory = {unit: UnitMemory(size) for unit in self.units}
        #: Requests received, by function code (counted before they are answered).
        self.requests: Counter[int] = Counter()
        self.scenario = list(scenario or [])
        self._answering = asyncio.Event()
        self._answering.set()
        self._server: ModbusTcpServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = 0.0

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> ModbusPlc:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the server and start the machine clock and the scenario."""
        self._started_at = time.monotonic()
        self._write_machine()
        await self.start_server()
        self._tasks.append(asyncio.create_task(self._clock(), name="modbus-plc-clock"))
        if self.scenario:
            self._tasks.append(asyncio.create_task(self._play(), name="modbus-plc-scenario"))

    async def close(self) -> None:
        """Stop everything this simulator started."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._answering.set()
        await self.stop_server()

    async def start_server(self) -> None:
        """Listen (again) on the configured port; memory is kept across restarts."""
        if self._server is not None:
            return
        devices = [SimDevice(id=unit, simdata=self._simdata(), action=self._action_for(unit))
                   for unit in self.units]
        server = ModbusTcpServer(devices, address=(self.host, self.port),
                                 trace_pdu=self._trace_pdu)
        await server.serve_forever(background=True)
        if self.port == 0:  # the OS picked a port: remember it so a restart reuses it
            self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._server = server

    async def stop_server(self) -> None:
        """Close the listener and every client connection."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    async def restart_server(self, down_for: float = 0.0) -> None:
        """Drop all connections, stay closed `down_for` seconds, listen again."""
        await self.stop_server()
        await asyncio.sleep(down_for)
        await self.start_server()

    @property
    def serving(self) -> bool:
        """True while the server listens."""
        return self._server is not None

    # ------------------------------------------------------------------ test API
    def set_registers(self, address: int, values: list[int], *,
                      table: str = "holding_register", unit: int | None = None) -> None:
        """Write raw 16-bit words (or bools for bit tables) starting at `address`."""
        mem = self.memory[unit or self.units[0]]
        mem.tables[table][address:address + len(values)] = list(values)

    set_bits = set_registers

    def get_registers(self, address: int, count: int, *, table: str = "holding_register",
                      unit: int | None = None) -> list[Any]:
        """Read raw values back (what a client wrote, for example)."""
        return self.memory[unit or self.units[0]].tables[table][address:address + count]

    def set_holes(self, start: int, count: int = 1, *, table: str = "holding_register",
                  unit: int | None = None) -> None:
        """Make [start, start+count) illegal: requests touching it get exception 2."""
        holes = self.memory[unit or self.units[0]].holes[table]
        holes[start:start + count] = b"\x01" * count

    def clear_holes(self) -> None:
        """Make every address legal again."""
        for mem in self.memory.values():
            for table in TABLES:
                mem.holes[table][:] = bytearray(mem.size)

    def stall(self, stalled: bool = True) -> None:
        """While stalled, requests are accepted but not answered (the client times out)."""
        if stalled:
            self._answering.clear()
        else:
            self._answering.set()

    def churn(self, start: int, count: int, fraction: float, period: float = 0.1,
              *, seed: int = 1) -> None:
        """Every `period` s bump a random `fraction` of holding [start, start+count)."""
        self._tasks.append(asyncio.create_task(
            self._churn(start, count, fraction, period, seed), name="modbus-plc-churn"))

    async def _churn(self, start: int, count: int, fraction: float, period: float,
                     seed: int) -> None:
        rng = random.Random(seed)
        store = self.memory[self.units[0]].tables["holding_register"]
        per_round = max(1, int(count * fraction))
        while True:
            await asyncio.sleep(period)
            for address in rng.sample(range(start, start + count), per_round):
                store[address] = (store[address] + 1) & 0xFFFF

    def request_count(self, function_code: int | None = None) -> int:
        """Requests received so far (of one function code, or all)."""
        if function_code is None:
            return sum(self.requests.values())
        return self.requests[function_code]

    def reset_request_counts(self) -> None:
        """Start counting from zero again."""
        self.requests.clear()

    # ------------------------------------------------------------------ pymodbus glue
    def _simdata(self) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
        # Contents are synced from UnitMemory by the action on every request, so zeros here.
        bits = [SimData(0, values=[False] * self.size, datatype=DataType.BITS)]
        regs = [SimData(0, values=[0] * self.size, datatype=DataType.REGISTERS)]
        return (bits, [SimData(0, values=[False] * self.size, datatype=DataType.BITS)],
                regs, [SimData(0, values=[0] * self.size, datatype=DataType.REGISTERS)])

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.requests[pdu.function_code] += 1
        return pdu

    def _action_for(self, unit: int) -> Any:
        mem = self.memory[unit]

        async def action(function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None
                         ) -> ExcCodes | None:
            """Sync the pymodbus block with UnitMemory; holes and stalls happen here."""
            if not self._answering.is_set():
                await self._answering.wait()
            table = _FC_TABLE[function_code]
            if table in _BIT_TABLES:
                return _sync_bits(mem, table, start_address, address, count, registers,
                                  set_values)
            if mem.has_hole(table, address, count):
                return ExcCodes.ILLEGAL_ADDRESS
            store = mem.tables[table]
            offset = address - start_address
            if set_values:
                store[address:address + len(set_values)] = set_values
            registers[offset:offset + count] = store[address:address + count]
            return None

        return action

    # ------------------------------------------------------------------ machine
    async def _clock(self) -> None:
        period = 0.05 if self.machine.cycle_time <= 0 else min(0.05, self.machine.cycle_time / 4)
        while True:
            await asyncio.sleep(period)
            if self.machine.tick(time.monotonic()):
                self._write_machine()

    def _write_machine(self) -> None:
        m = self.machine
        words = _COUNTER_WORDS[m.counter_type]
        for unit in self.units[:1]:
            hr = self.memory[unit].tables["holding_register"]
            hr[HR_STATE], hr[HR_ALARM] = int(m.state), m.alarm
            hr[HR_CYCLE_MS] = min(0xFFFF, int(m.cycle_time * 1000))
            hr[HR_GOOD:HR_GOOD + words] = _to_words(m.good, words)
            hr[HR_SCRAP:HR_SCRAP + words] = _to_words(m.scrap, words)
            self.memory[unit].tables["input_register"][0:18] = hr[0:18]
            di = self.memory[unit].tables["discrete_input"]
            di[0], di[1] = m.state == MachineState.RUNNING, m.state == MachineState.DOWN

    async def _play(self) -> None:
        for step in sorted(self.scenario, key=lambda s: float(s.get("at", 0))):
            delay = self._started_at + float(step.get("at", 0)) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            log.info("scenario step: %s", step)
            await self.apply_step(step)

    async def apply_step(self, step: dict[str, Any]) -> None:
        """Apply one scenario step now (see the module docstring for the vocabulary)."""
        do, duration = step["do"], step.get("for")
        now, m = time.monotonic(), self.machine
        if do == "down":
            m.go_down(now, None if duration is None else float(duration), alarm=1)
        elif do in ("run", "idle", "setup"):
            m.set_state({"run": MachineState.RUNNING, "idle": MachineState.IDLE,
                         "setup": MachineState.SETUP}[do])
        elif do in ("set_counter", "reset_counter"):
            m.set_counter(step.get("counter", "good"), int(step.get("value", 0)))
        elif do == "holes":
            self.set_holes(int(step["start"]), int(step.get("count", 1)),
                           table=step.get("table", "holding_register"), unit=step.get("unit"))
        elif do == "clear_holes":
            self.clear_holes()
        elif do == "stall":
            self.stall(True)
            if duration is not None:
                asyncio.get_running_loop().call_later(float(duration), self.stall, False)
        elif do == "close":
            if duration is None:
                await self.stop_server()
            else:
                await self.restart_server(float(duration))
        else:
            raise ValueError(f"unknown scenario step {do!r}")
        self._write_machine()


def _to_words(value: int, words: int) -> list[int]:
    return [(value >> (16 * (words - 1 - i))) & 0xFFFF for i in range(words)]


def _sync_bits(mem: UnitMemory, table: str, start_word: int, address: int, words: int,
               registers: list[int], set_values: list[int] | list[bool] | None
               ) -> ExcCodes | None:
    """Pack UnitMemory bits into the datastore's 16-bit words (bit 0 = lowest address)."""
    first = address - address % 16
    if mem.has_hole(table, first, words * 16):
        return ExcCodes.ILLEGAL_ADDRESS
    bits = mem.tables[table]
    if set_values:
        bits[address:address + len(set_values)] = [bool(v) for v in set_values]
    for i in range(words):
        base = first + 16 * i
        word = 0
        for j, bit in enumerate(bits[base:base + 16]):
            if bit:
                word |= 1 << j
        registers[base // 16 - start_word] = word
    return None


def load_scenario(path: str | Path) -> list[dict[str, Any]]:
    """Read a scenario file (JSON, or YAML when the name ends in .yaml/.yml)."""
    text = Path(path).read_text(encoding="utf-8")
    if str(path).endswith((".yaml", ".yml")):
        import yaml  # imported here: only the command line needs it

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    steps = data.get("steps", []) if isinstance(data, dict) else data
    if not isinstance(steps, list):
        raise ValueError("a scenario is a list of steps or {'steps': [...]}")
    return steps


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="mes-edge sim modbus", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=5020, help="Modbus TCP port to listen on")
    parser.add_argument("--scenario", help="YAML or JSON scenario file of timed steps")
    parser.add_argument("--cycle-time", type=float, default=1.0, help="seconds per part")
    parser.add_argument("--counter-type", default="uint32", choices=sorted(_COUNTER_WORDS),
                        help="width of the part counters (uint16 wraps at 65535)")
    parser.add_argument("--stop-probability", type=float, default=0.0,
                        help="chance per cycle that the machine stops with a fault")
    parser.add_argument("--seed", type=int, default=1, help="random seed (scrap, stops)")
    parser.add_argument("--size", type=int, default=2000, help="addresses per table")
    parser.add_argument("--units", default="1", help="comma-separated unit ids")
    parser.add_argument("--churn", metavar="START:COUNT:FRACTION",
                        help="bump a fraction of these holding registers every 100 ms "
                        "(a load test for pollers)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    machine = Machine(cycle_time=args.cycle_time, counter_type=args.counter_type,
                      stop_probability=args.stop_probability, seed=args.seed)
    plc = ModbusPlc(host=args.host, port=args.port, size=args.size, machine=machine,
                    units=tuple(int(u) for u in args.units.split(",")),
                    scenario=load_scenario(args.scenario) if args.scenario else None)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        async with plc:
            if args.churn:
                start, count, fraction = args.churn.split(":")
                plc.churn(int(start), int(count), float(fraction), seed=args.seed)
            print(json.dumps({"listening": f"{plc.host}:{plc.port}"}), flush=True)
            await stop.wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
