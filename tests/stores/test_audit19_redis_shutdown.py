"""Audit 19: the Redis stores during a graceful shutdown.

A service shuts down by cancelling the block of ``open_stores(...)`` while its body
finishes the requests in flight under a shield (as the SQLite fix of this audit, see
tests/test_audit19_cancel.py). The claims that work holds must keep their lease (another
worker must not be granted the key meanwhile), its releases must be written and
published (so that the waiters of this process and of others wake at once), and the
block must still end promptly, in ``trio.Cancelled`` (or the Ctrl-C), once its body has.

Redis leases expire on the server's clock, so these tests run on the real clock (never
more than about 2 s each), with short leases and generous margins; the server's state is
read through a plain socket (``_command``).
"""

from __future__ import annotations

import signal
import time

import pytest
import trio

from stageflow_trio.pipeline.idempotency import IdempotencyClaim
from stageflow_trio.stores import open_stores
from stageflow_trio.stores.redis import _RENEW, RedisIdempotencyStore, open_redis_stores
from tests.trio_setups import SigintAtStep

from .conftest import _command

CLAIM_KEY = "stageflow:idem:claim:k"


def _pttl(url: str) -> int:
    """The claim's time to live on the server, in ms (-2: no such key)."""
    reply = _command(url, "PTTL", CLAIM_KEY)
    assert reply.startswith(b":"), reply
    return int(reply[1:].strip())


async def test_a_claim_worked_on_under_a_shield_keeps_its_lease_after_the_block_is_cancelled(
    redis_url: str,
) -> None:
    """The block is cancelled while its body finishes a request under a shield, holding a
    claim for 2 s; the lease is 1 s. Before the fix the cancellation closed the
    client's connection at once: the lease was no longer renewed, so another worker was
    granted the key one lease later (and ran the stage a second time), and the release
    was lost. Now the lease is renewed until the release, which is written; the other
    worker gets the key only then."""
    log: list[tuple[str, float]] = []
    started = time.monotonic()
    ttl: list[int] = []

    def note(what: str) -> None:
        log.append((what, time.monotonic() - started))

    async def shutting_down_worker() -> None:
        with trio.CancelScope() as outer:
            async with open_stores(redis_url + "?claim_lease_seconds=1") as stores:
                claim = await stores.idempotency.claim("k")
                assert isinstance(claim, IdempotencyClaim)
                note("first claimed")
                outer.cancel()  # the shutdown begins
                with trio.CancelScope(shield=True):
                    try:
                        await trio.sleep(2)  # the request in flight finishes: 2 leases
                        ttl.append(_pttl(redis_url))
                    finally:
                        stores.idempotency.release(claim)
                        note("first released")
        assert outer.cancelled_caught

    async def other_worker() -> None:
        await trio.sleep(1.4)  # past the lease of a claim nobody renews
        async with open_stores(redis_url + "?claim_lease_seconds=1") as stores:
            got = await stores.idempotency.claim("k")
            assert isinstance(got, IdempotencyClaim)
            note("second claimed")
            stores.idempotency.release(got)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(shutting_down_worker)
        nursery.start_soon(other_worker)
    names = [name for name, _ in log]
    assert names == ["first claimed", "first released", "second claimed"], log
    # Renewed until the end of the work (a lease of 1 s, renewed every 1/3 of it; the
    # margins are wide for a loaded CI machine)...
    assert ttl[0] > 0, ttl
    # ... and freed by the release, which woke the other worker: not a lease later.
    assert log[2][1] - log[1][1] < 0.9, log
    assert _pttl(redis_url) == -2


async def test_the_renewals_go_on_while_the_cancelled_body_works_shielded(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted: the store's renewal script keeps running, and succeeding, after the block's
    cancellation, for as long as its body works; it stops with the block."""
    renewed: list[int] = []
    real = RedisIdempotencyStore._renew_leases

    async def counting(self: RedisIdempotencyStore) -> None:
        client = self._client
        original = client.eval

        async def spy(script: str, *args: object, **kwargs: object) -> object:
            result = await original(script, *args, **kwargs)
            if script == _RENEW:
                renewed.append(int(result))
            return result

        monkeypatch.setattr(client, "eval", spy)
        await real(self)

    monkeypatch.setattr(RedisIdempotencyStore, "_renew_leases", counting)
    with trio.CancelScope() as outer:
        async with open_redis_stores(redis_url, claim_lease_seconds=0.6) as stores:
            claim = await stores.idempotency.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            outer.cancel()
            with trio.CancelScope(shield=True):
                await trio.sleep(1)  # 5 renewal periods (wide margins: a loaded CI machine)
                during = list(renewed)
                stores.idempotency.release(claim)
    assert outer.cancelled_caught
    # Every renewal after the cancellation found the claim and renewed it.
    assert len(during) >= 3, during
    assert set(during) == {1}, during
    assert _pttl(redis_url) == -2


async def test_a_waiter_of_the_same_block_is_woken_by_a_release_after_the_cancellation(
    redis_url: str,
) -> None:
    """Two requests of the cancelled block finish under a shield: one holds the key, the
    other waits for it (a duplicate). With a 30 s lease and resync, only the release's
    pub/sub message wakes the waiter: before the fix the listener had stopped with the
    cancellation (and the client's connection had closed: the waiter's own look-up failed)."""
    waited: list[float] = []
    with trio.CancelScope() as outer:
        async with open_redis_stores(
            redis_url, claim_lease_seconds=30, resync_interval=30
        ) as stores:
            store = stores.idempotency
            claim = await store.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            outer.cancel()
            with trio.CancelScope(shield=True):

                async def holder() -> None:
                    await trio.sleep(0.3)
                    store.release(claim)

                async def duplicate() -> None:
                    start = trio.current_time()
                    with trio.fail_after(3):
                        got = await store.claim("k")
                    waited.append(trio.current_time() - start)
                    assert isinstance(got, IdempotencyClaim)
                    store.release(got)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(duplicate)
                    nursery.start_soon(holder)
    assert outer.cancelled_caught
    assert len(waited) == 1
    assert 0.25 < waited[0] < 1.5, waited
    assert _pttl(redis_url) == -2  # the duplicate's release was written too


async def test_a_release_in_a_cancelled_blocks_cleanup_is_written(redis_url: str) -> None:
    """The holder's cleanup (not shielded) after the block is cancelled: its release is
    written before the block ends (as on SQLite), not left to the lease (30 s here: every
    process waited that long for the key)."""
    start = time.monotonic()
    with trio.CancelScope() as outer:
        async with open_redis_stores(redis_url, claim_lease_seconds=30) as stores:
            claim = await stores.idempotency.claim("k")
            assert isinstance(claim, IdempotencyClaim)
            try:
                outer.cancel()
                await trio.sleep(10)
            finally:
                stores.idempotency.release(claim)
    assert outer.cancelled_caught
    assert time.monotonic() - start < 2
    assert _pttl(redis_url) == -2


async def test_a_ctrl_c_during_the_shielded_work_ends_the_block_promptly(
    redis_url: str,
) -> None:
    """A Ctrl-C while the cancelled block's body works shielded: the KeyboardInterrupt
    leaves the block promptly (nothing stays shielded), and the release its cleanup made
    is written on the way."""
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):  # noqa: PT012
        with trio.CancelScope() as outer:
            async with open_redis_stores(
                redis_url, claim_lease_seconds=30, connect_timeout=30
            ) as stores:
                claim = await stores.idempotency.claim("k")
                assert isinstance(claim, IdempotencyClaim)
                outer.cancel()
                with trio.CancelScope(shield=True):
                    try:
                        await trio.sleep(0.2)
                        raise KeyboardInterrupt  # a Ctrl-C landing in the work
                    finally:
                        stores.idempotency.release(claim)
    assert time.monotonic() - start < 2  # not connect_timeout (30 s), not for ever
    assert _pttl(redis_url) == -2


class _Hung(Exception):
    """Raised by the watchdog (SIGALRM) into a run that would never end."""


def _watchdog(signum: int, frame: object) -> None:
    raise _Hung


@pytest.mark.parametrize("restrict", [False, True], ids=["anywhere", "at_checkpoints"])
def test_a_ctrl_c_at_any_step_of_a_graceful_shutdown_never_hangs(
    redis_url: str, restrict: bool
) -> None:
    """Open, claim, cancel the block, finish the work shielded, release, close: a Ctrl-C
    before every task step of it (trio's ``restrict_keyboard_interrupt_to_checkpoints``
    both ways). Each run ends promptly, in a bare KeyboardInterrupt or normally; nothing
    stays shielded (a run still going after 10 s is stopped by a SIGALRM watchdog and
    fails); a run the Ctrl-C did not reach released its claim in Redis."""

    def once(at: int | None) -> tuple[BaseException | None, float, SigintAtStep, list[str]]:
        assert _command(redis_url, "FLUSHDB").startswith(b"+OK")
        instrument = SigintAtStep(at)
        done: list[str] = []

        async def main() -> None:
            with trio.CancelScope() as outer:
                async with open_redis_stores(
                    redis_url, claim_lease_seconds=30, connect_timeout=5
                ) as stores:
                    claim = await stores.idempotency.claim("k")
                    assert isinstance(claim, IdempotencyClaim)
                    outer.cancel()
                    with trio.CancelScope(shield=True):
                        try:
                            await trio.sleep(0.005)
                        finally:
                            stores.idempotency.release(claim)
                            done.append("released")
            done.append("ended")

        error: BaseException | None = None
        previous = signal.signal(signal.SIGALRM, _watchdog)
        signal.setitimer(signal.ITIMER_REAL, 10)
        start = time.monotonic()
        try:
            trio.run(
                main,
                instruments=[instrument],
                restrict_keyboard_interrupt_to_checkpoints=restrict,
            )
        except BaseException as exc:  # what the run ended in is checked below
            error = exc
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return error, time.monotonic() - start, instrument, done

    error, _, counted, done = once(None)
    assert error is None, error
    assert done == ["released", "ended"]
    assert _pttl(redis_url) == -2
    interrupted = 0
    for at in range(counted.steps + 3):
        error, elapsed, instrument, done = once(at)
        where = f"Ctrl-C before step {at} of about {counted.steps}"
        assert not isinstance(error, _Hung), where
        assert elapsed < 3, (where, elapsed)
        if error is None:
            assert done == ["released", "ended"], where
            assert _pttl(redis_url) == -2, where
        else:
            assert type(error) is KeyboardInterrupt, (where, repr(error))
            assert instrument.sent, where
            interrupted += 1
    assert interrupted >= 10
