"""A labeller by name, from flat settings (the perception node's parameters).

features     the shipped feature classifier (default; ``model_dir`` overrides its folder)
rules        the first round's shape rules (primitives only)
vlm          an OpenAI-compatible vision model at ``vlm_base_url``; features meanwhile
image_text   a local CLIP/SigLIP folder at ``model_dir``; features meanwhile
"""

from __future__ import annotations

from dataclasses import dataclass

from robot_memory.perception.labelling.base import Labeller
from robot_memory.perception.labelling.feature_labeller import FeatureLabeller
from robot_memory.perception.labelling.image_text_labeller import (
    ImageTextConfig,
    image_text_labeller,
)
from robot_memory.perception.labelling.shape_rules import ShapeRuleLabeller
from robot_memory.perception.labelling.tracked import TrackingConfig
from robot_memory.perception.labelling.vlm_labeller import VlmLabellerConfig, vlm_labeller

LABELLERS = ("features", "rules", "vlm", "image_text")


@dataclass(frozen=True)
class LabellerSettings:
    name: str = "features"
    model_dir: str = ""  # features: its model folder (empty: shipped); image_text: required
    categories: str = ""  # comma-separated words for vlm / image_text (empty: the classifier's)
    vlm_base_url: str = "http://localhost:8000/v1"
    vlm_model: str = ""
    vlm_api_key_env: str = "OPENAI_API_KEY"
    vlm_timeout_s: float = 10.0
    vlm_structured_output: str = "json_schema"
    image_text_prompt: str = "a photo of a {}"
    track_radius: float = 0.03
    retry_after_s: float = 5.0

    @classmethod
    def from_parameters(cls, p: dict) -> LabellerSettings:
        """From the perception node's ``labeller*`` parameters."""
        return cls(
            name=str(p["labeller"]),
            model_dir=str(p["labeller_model_dir"]),
            categories=str(p["labeller_categories"]),
            vlm_base_url=str(p["labeller_vlm_base_url"]),
            vlm_model=str(p["labeller_vlm_model"]),
            vlm_api_key_env=str(p["labeller_vlm_api_key_env"]),
            vlm_timeout_s=float(p["labeller_vlm_timeout_s"]),
        )


def make_labeller(settings: LabellerSettings) -> Labeller:
    """Raises ValueError / FileNotFoundError with what to fix."""
    if settings.name not in LABELLERS:
        raise ValueError(f"labeller must be one of {list(LABELLERS)}, got {settings.name!r}")
    if settings.name == "rules":
        return ShapeRuleLabeller()
    features_dir = settings.model_dir if settings.name == "features" else ""
    features = FeatureLabeller(features_dir or None)
    if settings.name == "features":
        return features
    words = tuple(w.strip() for w in settings.categories.split(",") if w.strip()) or None
    tracking = TrackingConfig(settings.track_radius, settings.retry_after_s)
    if settings.name == "vlm":
        config = VlmLabellerConfig(
            base_url=settings.vlm_base_url,
            model=settings.vlm_model,
            api_key_env=settings.vlm_api_key_env,
            timeout_s=settings.vlm_timeout_s,
            structured_output=settings.vlm_structured_output,
        )
        return vlm_labeller(config, features, words, tracking)
    if not settings.model_dir:
        raise ValueError("labeller image_text needs labeller_model_dir (a local model folder)")
    config = ImageTextConfig(settings.model_dir, settings.image_text_prompt)
    return image_text_labeller(config, features, words, tracking)
