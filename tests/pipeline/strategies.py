"""Hypothesis strategies for stage dependency graphs, shared by the builder and engine tests.

A graph is a ``dict[str, tuple[str, ...]]``: stage name -> the stages it depends on,
in insertion order.

- :func:`dags`: acyclic, every dependency exists, inserted in dependency order (each
  stage depends only on earlier ones), so a validating builder accepts it stage by stage.
- :func:`shuffled_dags`: the same graphs inserted in any order.
- :func:`dags_with_back_edge`: a DAG plus one extra edge that closes a cycle.
- :func:`graphs`: anything, including missing dependencies and cycles (no self-loops).
- :func:`is_cycle`: whether a reported cycle path is a real cycle of a graph.
"""

from __future__ import annotations

import functools
import operator
import string
from itertools import pairwise
from typing import TYPE_CHECKING

from hypothesis import strategies as st

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "Graph",
    "ancestors",
    "dags",
    "dags_with_back_edge",
    "graphs",
    "is_cycle",
    "shuffled_dags",
    "stage_names",
]

Graph = dict[str, tuple[str, ...]]

stage_names = st.text(
    alphabet=string.ascii_lowercase + string.digits + "_-", min_size=1, max_size=6
)
"""Valid stage names (non-empty, not blank)."""


@st.composite
def dags(draw: st.DrawFn, min_stages: int = 1, max_stages: int = 12, max_deps: int = 4) -> Graph:
    """An acyclic graph whose insertion order is a topological order."""
    names = draw(st.lists(stage_names, min_size=min_stages, max_size=max_stages, unique=True))
    graph: Graph = {}
    for index, name in enumerate(names):
        earlier = names[:index]
        deps: list[str] = []
        if earlier:
            deps = draw(
                st.lists(st.sampled_from(earlier), unique=True, max_size=min(max_deps, index))
            )
        graph[name] = tuple(deps)
    return graph


@st.composite
def shuffled_dags(draw: st.DrawFn, min_stages: int = 1, max_stages: int = 12) -> Graph:
    """An acyclic graph in an arbitrary insertion order."""
    graph = draw(dags(min_stages=min_stages, max_stages=max_stages))
    order = draw(st.permutations(list(graph)))
    return {name: graph[name] for name in order}


def ancestors(graph: Mapping[str, Sequence[str]], stage: str) -> set[str]:
    """Every stage ``stage`` depends on, directly or transitively."""
    seen: set[str] = set()
    todo = list(graph[stage])
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(graph[dep])
    return seen


@st.composite
def dags_with_back_edge(draw: st.DrawFn, max_stages: int = 12) -> tuple[Graph, str, str]:
    """``(graph, source, target)``: ``graph`` is a DAG, ``target`` depends (transitively) on
    ``source``, so adding "source depends on target" closes a cycle. The graph returned
    already includes that edge; ``source`` keeps its position.
    """
    graph = draw(dags(min_stages=2, max_stages=max_stages).filter(lambda g: any(g.values())))
    target = draw(st.sampled_from([name for name, deps in graph.items() if deps]))
    source = draw(st.sampled_from(sorted(ancestors(graph, target))))
    with_edge = dict(graph)
    with_edge[source] = (*graph[source], target)
    return with_edge, source, target


@st.composite
def graphs(draw: st.DrawFn, max_stages: int = 8, missing: bool = True) -> Graph:
    """Any graph without self-loops: dependencies may form cycles and, if ``missing``,
    name stages that do not exist.
    """
    names = draw(st.lists(stage_names, min_size=1, max_size=max_stages, unique=True))
    # Real names repeated so that most edges exist and cycles are common.
    pool = st.sampled_from(names * 4 + (["missing_x", "missing_y"] if missing else []))
    graph: Graph = {}
    for name in names:
        not_itself = functools.partial(operator.ne, name)
        deps = draw(st.lists(pool.filter(not_itself), max_size=3))
        graph[name] = tuple(deps)
    return graph


def is_cycle(path: Sequence[str], graph: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``path`` (first stage repeated last) follows dependency edges of ``graph``."""
    if len(path) < 2 or path[0] != path[-1]:
        return False
    return all(later in graph[earlier] for earlier, later in pairwise(path))
