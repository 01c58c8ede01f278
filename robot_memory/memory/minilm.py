"""The shipped sentence-embedding model (all-MiniLM-L6-v2, a 6-layer BERT) run
in numpy (ROS-free).

Memory and the planner embed short labels and instructions ("red mug", "put
the screwdriver back"): a few tokens, a few thousand a day. Loading the model
through sentence-transformers cost each of them ~4.6 s of CPU at start (torch,
transformers and scikit-learn imports) and ~500 MB of memory, on 2 cores
beside five other nodes starting. The same forward pass in numpy loads in
~0.3 s from the same files: the Rust ``tokenizers`` tokenizer from
``tokenizer.json``, the weights from ``model.safetensors``, and the recipe of
the folder's sentence-transformers config (truncation at ``max_seq_length``,
mean pooling over the attention mask, L2 normalisation).
``test/test_text_encoder.py`` checks the vectors against transformers' own
``BertModel`` with the same pooling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: sentence-transformers modules this encoder reproduces, in order.
EXPECTED_MODULES = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
)


class TextModelError(RuntimeError):
    """The folder is not a BERT sentence-embedding model this encoder can run."""


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLMEncoder:
    """``encode(texts)``: (n, 384) float32 unit vectors, as sentence-transformers
    gives for this folder."""

    def __init__(self, folder: str | Path) -> None:
        from safetensors.numpy import load_file
        from scipy.special import erf
        from tokenizers import Tokenizer

        folder = Path(folder)
        modules = json.loads((folder / "modules.json").read_text())
        if tuple(m["type"] for m in modules) != EXPECTED_MODULES:
            raise TextModelError(f"{folder}: modules {[m['type'] for m in modules]}")
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens")
        ):
            raise TextModelError(f"{folder}: only mean pooling is implemented, got {pooling}")
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise TextModelError(f"{folder}: need a BERT with gelu, got {config.get('model_type')}")
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])
        max_len = int(
            json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_len)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self.w = load_file(str(folder / "model.safetensors"))
        self._transposed: dict[str, np.ndarray] = {}
        self._erf = erf

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=np.float32)
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(ids.shape[1])][None]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(
            x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps
        )
        # padded keys get the most negative float32, as transformers' extended mask does
        bias = (1.0 - mask)[:, None, None, :] * np.finfo(np.float32).min
        for i in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{i}.")
        pooled = (x * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)[:, None]
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        """A linear layer as one 2-D matrix product (BLAS), weights transposed once."""
        weight = self._transposed.get(name)
        if weight is None:
            weight = self._transposed[name] = np.ascontiguousarray(self.w[name + ".weight"].T)
        flat = x.reshape(-1, x.shape[-1]) @ weight + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], weight.shape[1])

    def _layer(self, x: np.ndarray, bias: np.ndarray, prefix: str) -> np.ndarray:
        n, t, d = x.shape
        h, dh = self.heads, d // self.heads

        def split(y: np.ndarray) -> np.ndarray:  # (n, t, d) -> (n, heads, t, dh)
            return y.reshape(n, t, h, dh).transpose(0, 2, 1, 3)

        att = prefix + "attention."
        q = split(self._dense(x, att + "self.query"))
        k = split(self._dense(x, att + "self.key"))
        v = split(self._dense(x, att + "self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + bias
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, t, d)
        x = _layer_norm(
            self._dense(context, att + "output.dense") + x,
            self.w[att + "output.LayerNorm.weight"],
            self.w[att + "output.LayerNorm.bias"],
            self.eps,
        )
        inner = self._dense(x, prefix + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + self._erf(inner / np.sqrt(2.0)))  # exact gelu
        return _layer_norm(
            self._dense(inner, prefix + "output.dense") + x,
            self.w[prefix + "output.LayerNorm.weight"],
            self.w[prefix + "output.LayerNorm.bias"],
            self.eps,
        )


__all__ = ["EXPECTED_MODULES", "MiniLMEncoder", "TextModelError"]
