"""Audit 21, typing: the run-time half.

The type-level shapes (a BaseTool subclass with class attributes, MockTranscription's
words, a float ``ttl_seconds``, a process-wide undo store or approval service that does
not subclass the package's) are in ``tests/typing/pyright_shapes.py``, checked by mypy
and by pyright (``test_audit19_pyright.py``). Here: what a claim's repr shows.
"""

from __future__ import annotations

import logging

import pytest

from stageflow_trio.pipeline.idempotency import IdempotencyClaim, InMemoryIdempotencyStore


def test_claim_repr_hides_the_token_but_equality_keeps_it() -> None:
    """The token lets its holder release the claim; a repr that ends up in a log held
    it whole (``IdempotencyClaim(key='k', token='8609b1fe...de9')``)."""
    claim = IdempotencyClaim("k")
    assert len(claim.token) == 32
    assert repr(claim) == f"IdempotencyClaim(key='k', token='{claim.token[:4]}...')"
    assert claim.token not in repr(claim)
    assert claim.token not in str(claim)
    # The field and equality are untouched: a claim is equal to one with its token only.
    assert claim == IdempotencyClaim("k", claim.token)
    assert claim != IdempotencyClaim("k", claim.token[:-1] + "x")
    assert hash(claim) == hash(IdempotencyClaim("k", claim.token))


@pytest.mark.parametrize("token", ["", "abc", "x" * 15])
def test_a_short_token_shows_none_of_itself(token: str) -> None:
    claim = IdempotencyClaim("k", token)
    assert repr(claim) == "IdempotencyClaim(key='k', token='...')"


def test_a_long_custom_token_shows_its_first_four_characters() -> None:
    claim = IdempotencyClaim("k", "secret-0123456789")
    assert repr(claim) == "IdempotencyClaim(key='k', token='secr...')"


async def test_a_granted_claim_logged_with_percent_r_keeps_its_token_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryIdempotencyStore()
    claim = await store.claim("k")
    assert isinstance(claim, IdempotencyClaim)
    with caplog.at_level(logging.INFO):
        logging.getLogger("audit21").info("holding %r", claim)
    store.release(claim)
    assert claim.token[:4] in caplog.text
    assert claim.token not in caplog.text
