"""Embeddings in the cache: unit-length float32 blobs, searched with numpy.

One row per bookmark in ``search_vectors`` (key, model, dimensions, blob). The embed
stage hands a vector over as base64 text (it travels through the queue and the
``results`` table like any stage output); the index copies it here as raw bytes.
A search loads the blobs of one model into one matrix and takes dot products:
100,000 × 768 floats is 300 MB of memory bandwidth, well under the 150 ms target
(bench/README.md). numpy is imported only when vectors are searched.
"""

from __future__ import annotations

import base64
import math
import sqlite3
import sys
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["VectorSet", "decode_vector", "delete_vector", "encode_vector", "ensure_vectors",
           "models_in", "store_vector"]


def ensure_vectors(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS search_vectors (key TEXT PRIMARY KEY, "
                 "model TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL)")


def encode_vector(values: Sequence[float]) -> str:
    """A vector as base64 of little-endian float32, scaled to unit length."""
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    packed = array("f", (v / norm for v in values))
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_vector(text: str) -> bytes:
    """The raw float32 bytes of :func:`encode_vector`'s text (empty when malformed)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        return b""
    return raw if len(raw) % 4 == 0 else b""


def store_vector(conn: sqlite3.Connection, key: str, model: str, text: str) -> None:
    raw = decode_vector(text)
    if not raw:
        delete_vector(conn, key)
        return
    conn.execute("INSERT OR REPLACE INTO search_vectors (key, model, dim, vector) "
                 "VALUES (?, ?, ?, ?)", (key, model, len(raw) // 4, raw))


def delete_vector(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM search_vectors WHERE key = ?", (key,))


def models_in(conn: sqlite3.Connection) -> dict[str, int]:
    """Model → how many bookmarks have a vector from it."""
    try:
        rows = conn.execute("SELECT model, count(*) FROM search_vectors GROUP BY model")
        return {str(m): int(n) for m, n in rows}
    except sqlite3.OperationalError:  # no index yet
        return {}


class VectorSet:
    """Every vector of one model, loaded once, searched by cosine similarity."""

    def __init__(self, keys: list[str], matrix: np.ndarray[Any, Any]) -> None:
        self.keys = keys
        self.matrix = matrix
        self._row = {k: i for i, k in enumerate(keys)}

    @classmethod
    def load(cls, conn: sqlite3.Connection, model: str) -> VectorSet:
        import numpy as np

        keys: list[str] = []
        blobs: list[bytes] = []
        dim = None
        for key, size, blob in conn.execute(
                "SELECT key, dim, vector FROM search_vectors WHERE model = ?", (model,)):
            if dim is None:
                dim = size
            if size == dim:
                keys.append(key)
                blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(keys), dim or 0)
        return cls(keys, matrix)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def vector_of(self, key: str) -> np.ndarray[Any, Any] | None:
        row = self._row.get(key)
        return None if row is None else self.matrix[row]

    def nearest(self, query: Sequence[float] | np.ndarray[Any, Any], limit: int,
                exclude: str | None = None) -> list[tuple[str, float]]:
        """The ``limit`` keys most similar to ``query``, best first, with cosine scores."""
        import numpy as np

        if not self.keys or limit <= 0:
            return []
        q = np.asarray(query, dtype="<f4")
        if q.shape != (self.dim,):
            return []
        q = q / (float(np.linalg.norm(q)) or 1.0)
        scores = self.matrix @ q
        if exclude is not None and exclude in self._row:
            scores[self._row[exclude]] = -np.inf
        k = min(limit, len(self.keys))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(self.keys[i], float(scores[i])) for i in top if np.isfinite(scores[i])]
