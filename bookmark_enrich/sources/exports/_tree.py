"""Stream the nodes of a JSON bookmark tree (Chrome, Firefox) with ijson events.

A node is a JSON object; its ``children`` array holds more nodes. Nodes are
reported when their object closes (leaves in document order), with their path
of child indices, so a second pass can know every folder's name even where the
name comes after the children (Chrome sorts keys: ``children`` < ``name``).
Nothing but the open nodes is held in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar

import ijson
from ijson.common import ObjectBuilder

__all__ = ["Node", "walk_nodes"]

_SCALARS = frozenset({"null", "boolean", "integer", "double", "number", "string"})
_TOP, _NODE, _CHILDREN, _BUILD, _SKIP, _OUTER = range(6)


@dataclass(slots=True)
class Node:
    """One object of the tree: its own fields (children left out) and where it sits."""

    path: tuple[int, ...]
    fields: dict[str, Any] = field(default_factory=dict)
    has_children: bool = False
    key: str | None = None
    kind: ClassVar[int] = _NODE


class _Children:
    __slots__ = ("count", "owner")
    kind = _CHILDREN

    def __init__(self, owner: Node) -> None:
        self.owner = owner
        self.count = 0


class _Build:
    __slots__ = ("builder", "depth", "owner")
    kind = _BUILD

    def __init__(self, owner: Node) -> None:
        self.owner = owner  # the node whose current key receives the value
        self.builder = ObjectBuilder()
        self.depth = 1


class _Outer:
    """An object outside the nodes (Chrome's top level and its ``roots`` map)."""

    __slots__ = ("count", "key", "level")
    kind = _OUTER

    def __init__(self, level: int) -> None:
        self.level = level
        self.key: str | None = None
        self.count = 0


def walk_nodes(stream: IO[bytes] | Any, *, roots_key: str | None,
               children_key: str = "children",
               names_only: bool = False) -> Iterator[Node]:
    """Every node of the tree, in the order their objects close.

    ``roots_key``: the nodes start at the values of ``top[roots_key]`` (Chrome's
    ``roots``); None: the top-level object is the root node (Firefox).
    ``names_only``: build no nested values (a fast first pass for folder names).
    Raises ijson's errors where the JSON is damaged, after the nodes before it.
    """
    # The frame on top decides what an event means; its ``kind`` is compared as an
    # int (one attribute read per event, not a chain of isinstance checks).
    stack: list[Any] = []
    top: Any = None
    for event, value in ijson.basic_parse(stream, use_float=True):
        kind = _TOP if top is None else top.kind
        if kind == _NODE:
            if event == "map_key":
                top.key = value
            elif event in _SCALARS:
                if top.key is not None:
                    top.fields[top.key] = value
            elif event == "end_map":
                stack.pop()
                yield top
                top = stack[-1] if stack else None
            elif event == "start_array" and top.key == children_key:
                top.has_children = True
                top = _Children(top)
                stack.append(top)
            elif names_only:
                top = _Skip()
                stack.append(top)
            else:  # a nested value (meta_info, annos)
                top = _Build(top)
                top.builder.event(event, value)
                stack.append(top)
        elif kind == _BUILD:
            if event == "start_map" or event == "start_array":
                top.depth += 1
            elif event == "end_map" or event == "end_array":
                top.depth -= 1
            top.builder.event(event, value)
            if top.depth == 0:
                stack.pop()
                node = top.owner
                if node.key is not None:
                    node.fields[node.key] = top.builder.value
                top = node
        elif kind == _CHILDREN:
            if event == "start_map":
                node = Node((*top.owner.path, top.count))
                top.count += 1
                top = node
                stack.append(top)
            elif event == "end_array":
                stack.pop()
                top = stack[-1]
            elif event == "start_array":
                top = _Skip()
                stack.append(top)
        elif kind == _SKIP:
            if event == "start_map" or event == "start_array":
                top.depth += 1
            elif event == "end_map" or event == "end_array":
                top.depth -= 1
                if top.depth == 0:
                    stack.pop()
                    top = stack[-1] if stack else None
        else:  # _TOP or _OUTER: a handful of events per file, kept out of the hot path
            top = _outer_event(kind, top, stack, event, value, roots_key)


def _outer_event(kind: int, top: Any, stack: list[Any], event: str, value: Any,
                 roots_key: str | None) -> Any:
    """The frame on top after an event outside the nodes (the file's own wrapping)."""
    if kind == _TOP:
        if event == "start_map":
            top = Node(()) if roots_key is None else _Outer(0)
            stack.append(top)
        elif event == "start_array":
            top = _Skip()
            stack.append(top)
    elif event == "map_key":  # _OUTER
        top.key = value
    elif event == "end_map":
        stack.pop()
        top = stack[-1] if stack else None
    elif event == "start_map" and top.level == 0 and top.key == roots_key:
        top = _Outer(1)
        stack.append(top)
    elif event == "start_map" and top.level == 1:
        node = Node((top.count,))
        node.fields["_root_key"] = top.key
        top.count += 1
        top = node
        stack.append(top)
    elif event == "start_map" or event == "start_array":
        top = _Skip()
        stack.append(top)
    return top


class _Skip:
    __slots__ = ("depth",)
    kind = _SKIP

    def __init__(self) -> None:
        self.depth = 1


def leaves_with_folders(first: IO[bytes] | Any, second: IO[bytes] | Any, *, roots_key: str | None,
                        is_folder: Any, name_of: Any, observe: Any = None
                        ) -> Iterator[tuple[Node, tuple[str, ...]]]:
    """Leaf nodes with their folder names, from two reads of the same JSON.

    The first read learns every folder's name (a folder's name may follow its
    children); the second streams the leaves. A folder of ``name_of(node) is
    None`` hides its whole subtree (Firefox's tags folder). ``observe(node)``, if
    given, sees every node of the first read (scalar fields only). Damage ends the
    first read quietly; the second raises ijson's error after the leaves before it.
    """
    names: dict[tuple[int, ...], str | None] = {}
    try:
        for node in walk_nodes(first, roots_key=roots_key, names_only=True):
            if observe is not None:
                observe(node)
            if is_folder(node):
                names[node.path] = name_of(node)
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError):
        pass
    parent: tuple[int, ...] | None = None
    folders: tuple[str, ...] | None = ()
    for node in walk_nodes(second, roots_key=roots_key):
        if is_folder(node):
            continue
        if node.path[:-1] != parent:  # siblings share their folders: look them up once
            parent = node.path[:-1]
            found = [names.get(parent[:i], "") for i in range(1, len(parent) + 1)]
            folders = None if None in found else tuple(n or "" for n in found)
        if folders is not None:
            yield node, folders
