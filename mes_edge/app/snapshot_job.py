"""The service's WIP snapshot, taken in a child process (issue 14).

A snapshot replays the event log since the previous one. Done inside the service, that replay's
pages of decoded events, the rows read for it and the encoded snapshot passed through the
service's heap (and the malloc arenas of the database driver's threads); glibc does not give
such memory back, so the service's resident size stepped up at every snapshot (7-13 MB each,
measured on SQLite) although nothing of it stayed in use. In a child process the replay's
memory ends with the child: the service only waits for it, and its memory follows what is
active.

The parent sends the database URL and the plant rules on the child's stdin (pickled: both sides
are this package, nothing else writes that pipe); the child answers one JSON line on stdout.
`python -m mes_edge.app.snapshot_job` is that child; it is not a command for people
(`mes-edge db snapshot` is).
"""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import resource
import sys
import time
from dataclasses import dataclass

from mes_edge.domain import PlantRules

log = logging.getLogger(__name__)


class SnapshotJobError(Exception):
    """The child could not take the snapshot (its last lines of stderr say why)."""


@dataclass(frozen=True)
class SnapshotResult:
    """What a snapshot child did."""

    seq: int | None  # the snapshot is taken after this event; None: no event since the last
    seconds: float
    child_pid: int
    child_max_rss_mb: float  # the child's peak resident size


async def snapshot_in_child(database_url: str, rules: PlantRules, *,
                            timeout_s: float) -> SnapshotResult:
    """Take a WIP snapshot in a child process and wait for it (at most `timeout_s`; the child
    is killed then, and when the caller is cancelled)."""
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mes_edge.app.snapshot_job",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    job = pickle.dumps({"database_url": database_url, "rules": rules})
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate(job)
    except BaseException:  # the timeout, or the service stopping: the child goes too
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        raise SnapshotJobError(f"the snapshot process exited with {proc.returncode}: "
                               + " | ".join(tail))
    try:
        answer = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise SnapshotJobError(f"the snapshot process answered {out[-200:]!r}") from exc
    return SnapshotResult(seq=answer["seq"], seconds=round(time.monotonic() - t0, 3),
                          child_pid=proc.pid, child_max_rss_mb=answer["max_rss_mb"])


async def _child(database_url: str, rules: PlantRules) -> int | None:
    from mes_edge.dispatcher.replay import take_snapshot
    from mes_edge.store import Store

    store = await Store.open(database_url, migrate=False)
    try:
        return await take_snapshot(store, rules)
    finally:
        await store.close()


def main() -> None:
    """The child: read the job from stdin, snapshot, print {"seq", "max_rss_mb"}."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    job = pickle.loads(sys.stdin.buffer.read())
    seq = asyncio.run(_child(job["database_url"], job["rules"]))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seq": seq, "max_rss_mb": round(peak_kb / 1024, 1)}), flush=True)


if __name__ == "__main__":
    main()
