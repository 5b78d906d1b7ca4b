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
from typing import IO, Any

import ijson
from ijson.common import ObjectBuilder

__all__ = ["Node", "walk_nodes"]

_SCALARS = frozenset({"null", "boolean", "integer", "double", "number", "string"})


@dataclass(slots=True)
class Node:
    """One object of the tree: its own fields (children left out) and where it sits."""

    path: tuple[int, ...]
    fields: dict[str, Any] = field(default_factory=dict)
    has_children: bool = False
    key: str | None = None


class _Children:
    __slots__ = ("count", "owner")

    def __init__(self, owner: Node) -> None:
        self.owner = owner
        self.count = 0


class _Build:
    __slots__ = ("builder", "depth", "owner")

    def __init__(self, owner: Any) -> None:
        self.owner = owner  # the Node or dict receiving the value
        self.builder = ObjectBuilder()
        self.depth = 0


class _Outer:
    """An object outside the nodes (Chrome's top level and its ``roots`` map)."""

    __slots__ = ("count", "key", "level")

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
    stack: list[Any] = []
    for event, value in ijson.basic_parse(stream, use_float=True):
        top = stack[-1] if stack else None
        if isinstance(top, _Build):
            if event in ("start_map", "start_array"):
                top.depth += 1
            elif event in ("end_map", "end_array"):
                top.depth -= 1
            top.builder.event(event, value)
            if top.depth == 0:
                stack.pop()
                if not names_only:
                    node = top.owner
                    if node.key is not None:
                        node.fields[node.key] = top.builder.value
            continue
        if isinstance(top, Node):
            if event == "map_key":
                top.key = value
            elif event in _SCALARS:
                if top.key is not None:
                    top.fields[top.key] = value
            elif event == "end_map":
                stack.pop()
                yield top
            elif event == "start_array" and top.key == children_key:
                top.has_children = True
                stack.append(_Children(top))
            elif names_only:
                stack.append(_Skip())
            else:  # a nested value (meta_info, annos)
                build = _Build(top)
                build.depth = 1
                build.builder.event(event, value)
                stack.append(build)
            continue
        if isinstance(top, _Children):
            if event == "start_map":
                stack.append(Node((*top.owner.path, top.count)))
                top.count += 1
            elif event == "end_array":
                stack.pop()
            elif event in ("start_array",):
                stack.append(_Skip())
            continue
        if isinstance(top, _Skip):
            if event in ("start_map", "start_array"):
                top.depth += 1
            elif event in ("end_map", "end_array"):
                top.depth -= 1
                if top.depth == 0:
                    stack.pop()
            continue
        # Outside the nodes.
        if top is None:
            if event == "start_map":
                stack.append(Node(()) if roots_key is None else _Outer(0))
            elif event == "start_array":
                stack.append(_Skip())
            continue
        assert isinstance(top, _Outer)
        if event == "map_key":
            top.key = value
        elif event == "end_map":
            stack.pop()
        elif event == "start_map" and top.level == 0 and top.key == roots_key:
            stack.append(_Outer(1))
        elif event == "start_map" and top.level == 1:
            node = Node((top.count,))
            node.fields["_root_key"] = top.key
            top.count += 1
            stack.append(node)
        elif event in ("start_map", "start_array"):
            stack.append(_Skip())


class _Skip:
    __slots__ = ("depth",)

    def __init__(self) -> None:
        self.depth = 1


def leaves_with_folders(first: IO[bytes] | Any, second: IO[bytes] | Any, *, roots_key: str | None,
                        is_folder: Any, name_of: Any) -> Iterator[tuple[Node, list[str]]]:
    """Leaf nodes with their folder names, from two reads of the same JSON.

    The first read learns every folder's name (a folder's name may follow its
    children); the second streams the leaves. A folder of ``name_of(node) is
    None`` hides its whole subtree (Firefox's tags folder). Damage ends the
    first read quietly; the second raises ijson's error after the leaves before it.
    """
    names: dict[tuple[int, ...], str | None] = {}
    try:
        for node in walk_nodes(first, roots_key=roots_key, names_only=True):
            if is_folder(node):
                names[node.path] = name_of(node)
    except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError):
        pass
    for node in walk_nodes(second, roots_key=roots_key):
        if is_folder(node):
            continue
        folders: list[str] = []
        hidden = False
        for i in range(1, len(node.path)):
            name = names.get(node.path[:i], "")
            if name is None:
                hidden = True
                break
            folders.append(name)
        if not hidden:
            yield node, folders
