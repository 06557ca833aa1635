"""The story tree: roots, cycles, sibling order and ``scenelet-N`` labels (docs/design.md §2).

Iterative throughout: trees can be thousands of scenelets deep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from bundler.problems import Problem, error
from bundler.records import SceneletRecord


@dataclass(frozen=True)
class StoryTree:
    root_id: str | None  # None unless there is exactly one root
    order: tuple[str, ...]  # pre-order of every scenelet reachable from a root
    labels: Mapping[str, str]  # uuid -> "scenelet-N" for the scenelets in ``order``
    children: Mapping[str, tuple[str, ...]]  # uuid -> children in script order
    problems: tuple[Problem, ...]


def script_order(scenelets: Sequence[SceneletRecord]) -> list[SceneletRecord]:
    """Siblings by ``created_at`` descending, ties by ascending UUID text.

    The generator inserts branch children last-first, so newest-first restores
    the script's choice order.
    """
    by_id = sorted(scenelets, key=lambda s: s.id)
    return sorted(by_id, key=lambda s: s.created_at, reverse=True)  # stable: keeps id order on ties


def build_tree(scenelets: Sequence[SceneletRecord]) -> StoryTree:
    by_id = {s.id: s for s in scenelets}
    problems: list[Problem] = []
    grouped: dict[str | None, list[SceneletRecord]] = {}
    for scenelet in scenelets:
        parent = scenelet.parent_id
        if parent is not None and parent not in by_id:
            problems.append(
                error(
                    "foreign-parent",
                    f"Scenelet {scenelet.id} references parent {parent}, which is not a scenelet of this story.",
                    scenelet_ref=scenelet.id,
                )
            )
            continue
        grouped.setdefault(parent, []).append(scenelet)
    roots = tuple(s.id for s in script_order(grouped.pop(None, [])))
    children: dict[str, tuple[str, ...]] = {
        parent: tuple(s.id for s in script_order(group)) for parent, group in grouped.items() if parent is not None
    }

    if not scenelets:
        problems.append(error("no-scenelets", "The story has no scenelets."))
    elif not roots:
        problems.append(error("no-root", "The story tree has no root scenelet (every scenelet has a parent)."))
    elif len(roots) > 1:
        for root in roots:
            problems.append(
                error(
                    "multiple-roots",
                    f"The story tree must have exactly one root; found {len(roots)}: {', '.join(roots)}.",
                    scenelet_ref=root,
                )
            )

    order = _pre_order(roots, children)
    labels = {scenelet_ref: f"scenelet-{n}" for n, scenelet_ref in enumerate(order, start=1)}
    problems.extend(_cycle_problems(by_id, set(order), children))
    problems = [
        p
        if p.scenelet_label or not p.scenelet_ref or p.scenelet_ref not in labels
        else Problem(p.severity, p.code, p.message, p.scenelet_ref, labels[p.scenelet_ref], p.shot_index, p.path)
        for p in problems
    ]
    return StoryTree(
        root_id=roots[0] if len(roots) == 1 else None,
        order=tuple(order),
        labels=MappingProxyType(labels),
        children=MappingProxyType(children),
        problems=tuple(problems),
    )


def _pre_order(roots: Sequence[str], children: Mapping[str, tuple[str, ...]]) -> list[str]:
    order: list[str] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(children.get(node, ())))
    return order


def _cycle_problems(
    by_id: Mapping[str, SceneletRecord], reached: set[str], children: Mapping[str, tuple[str, ...]]
) -> list[Problem]:
    """Scenelets no root reaches hang off a parent cycle; report each cycle once."""
    problems: list[Problem] = []
    settled = set(reached)
    for start in sorted(by_id):
        if start in settled or by_id[start].parent_id not in by_id:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        node: str | None = start
        while node is not None and node not in settled and node not in on_path:
            path.append(node)
            on_path.add(node)
            parent = by_id[node].parent_id
            node = parent if parent in by_id else None
        if node is not None and node in on_path:
            cycle = path[path.index(node) :]
            hanging = _subtree_size(cycle, children) - len(cycle)
            first = min(cycle)
            members = " -> ".join(cycle)
            problems.append(
                error(
                    "parent-cycle",
                    f"Scenelets form a parent cycle ({members}); "
                    f"{hanging} more scenelet(s) hang off it and are unreachable from the root.",
                    scenelet_ref=first,
                )
            )
            settled.update(_subtree(cycle, children))
        settled.update(path)
    return problems


def _subtree(starts: Sequence[str], children: Mapping[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    stack = list(starts)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(children.get(node, ()))
    return seen


def _subtree_size(starts: Sequence[str], children: Mapping[str, tuple[str, ...]]) -> int:
    return len(_subtree(starts, children))
