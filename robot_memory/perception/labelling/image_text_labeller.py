"""Object categories from an image-text model (CLIP, SigLIP, ...) that the user
has on disk: ``model_dir`` is a Hugging Face ``save_pretrained`` folder (config,
weights, tokenizer, image processor) loaded with ``local_files_only`` — nothing
is ever downloaded. The crop is scored against one prompt per category
("a photo of a mug"); the softmax over the categories is the confidence.

The project ships no weights for this (no PyPI wheel carries any): its accuracy
is whatever the user's model gives on their objects. Scoring runs on a worker
thread, once per tracked object (``tracked.py``), so a 50 ms ViT does not slow
the frame rate; the feature labeller answers until it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robot_memory.perception.labelling.base import UNKNOWN, Label, Labeller, ObjectCrop
from robot_memory.perception.labelling.tracked import TrackedLabeller, TrackingConfig


@dataclass(frozen=True)
class ImageTextConfig:
    model_dir: str
    prompt: str = "a photo of a {}"
    device: str = "cpu"
    min_confidence: float = 0.3  # below this the answer is "object" (and asked again later)

    def __post_init__(self) -> None:
        if "{}" not in self.prompt:
            raise ValueError(f"prompt needs a {{}} for the category, got {self.prompt!r}")
        if not 0.0 <= self.min_confidence < 1.0:
            raise ValueError("min_confidence must be in [0, 1)")


class ImageTextScorer:
    """Category probabilities of a crop from a local image-text model."""

    def __init__(self, config: ImageTextConfig, categories: tuple[str, ...]):
        folder = Path(config.model_dir).expanduser()
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"no image-text model at {folder}: point labeller_model_dir at a folder saved "
                "with save_pretrained (config.json, weights, tokenizer, preprocessor_config.json)"
            )
        import torch
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        self.torch, self.config, self.categories = torch, config, categories
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).to(config.device)
        self.model.eval()
        self.images = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        prompts = [config.prompt.format(c) for c in categories]
        with torch.no_grad():
            tokens = tokenizer(prompts, padding=True, return_tensors="pt").to(config.device)
            text = self._embedding(self.model.get_text_features(**tokens))
        self.text = text / text.norm(dim=-1, keepdim=True)
        scale = getattr(self.model, "logit_scale", None)
        self.scale = float(scale.detach().exp()) if scale is not None else 100.0

    @staticmethod
    def _embedding(output):
        """transformers 4 returns the projected tensor, 5 an output with it pooled."""
        return getattr(output, "pooler_output", output)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.no_grad():
            pixels = self.images(images=[image], return_tensors="pt").to(self.config.device)
            emb = self._embedding(self.model.get_image_features(**pixels))
            emb = emb / emb.norm(dim=-1, keepdim=True)
            return torch.softmax(self.scale * emb @ self.text.T, dim=-1)[0].cpu().numpy()

    def __call__(self, crop: ObjectCrop) -> Label:
        if crop.image.size == 0:
            return Label(UNKNOWN, 0.0, "image_text")
        p = self.probabilities(crop.image)
        best = int(np.argmax(p))
        scores = {c: float(s) for c, s in zip(self.categories, p, strict=True)}
        word = self.categories[best] if p[best] >= self.config.min_confidence else UNKNOWN
        return Label(word, float(p[best]), "image_text", scores)


def image_text_labeller(
    config: ImageTextConfig,
    fallback: Labeller,
    categories: tuple[str, ...] | None = None,
    tracking: TrackingConfig | None = None,
) -> TrackedLabeller:
    """The image-text labeller: ``categories`` default to the fallback's."""
    categories = tuple(categories or fallback.categories)
    scorer = ImageTextScorer(config, categories)
    return TrackedLabeller(scorer, fallback, categories, tracking or TrackingConfig(), "image_text")
