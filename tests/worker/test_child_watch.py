"""Subprocesses of a worker process are watched through pidfds (worker/child_watch.py)."""

import asyncio
import threading

from magsag.worker import child_watch


async def test_subprocesses_end_with_their_codes_and_no_thread_per_process():
    child_watch.use_pidfds()
    threads = threading.active_count()

    async def code(script: str) -> tuple[int, bytes]:
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return proc.returncode, out

    results = await asyncio.gather(*(code(f"echo {i}; exit {i}") for i in range(20)))
    assert results == [(i, f"{i}\n".encode()) for i in range(20)]
    sleepers = [await asyncio.create_subprocess_exec("sleep", "30") for _ in range(3)]
    assert threading.active_count() == threads  # the default watcher: a thread each
    for proc in sleepers:
        proc.kill()
    assert [await proc.wait() for proc in sleepers] == [-9] * 3


def test_a_new_event_loop_is_served_too():
    child_watch.use_pidfds()

    async def run() -> int:
        proc = await asyncio.create_subprocess_exec("true")
        return await proc.wait()

    assert asyncio.run(run()) == 0
    assert asyncio.run(run()) == 0
