"""Pluggable labelling: the shipped feature classifier on freshly rendered
objects, its model folder checks, the VLM labeller against the chat-completions
TEST DOUBLE (good, garbage, slow), and the local image-text path with a tiny
randomly initialised CLIP built here (nothing downloaded)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
from chat_completions_test_double import ChatCompletionsTestDouble

from robot_memory.learning.labeller_data import collect_crops
from robot_memory.paths import model_path
from robot_memory.perception.labelling.base import UNKNOWN, Label, ObjectCrop
from robot_memory.perception.labelling.crop_features import (
    FEATURE_NAMES,
    HEIGHT_BINS,
    _height_histogram,
    _median,
    band_spread,
    crop_features,
)
from robot_memory.perception.labelling.factory import LabellerSettings, make_labeller
from robot_memory.perception.labelling.feature_labeller import (
    FeatureLabeller,
    LabellerModelError,
    load_classifier,
)
from robot_memory.perception.labelling.image_text_labeller import (
    ImageTextConfig,
    image_text_labeller,
)
from robot_memory.perception.labelling.tracked import TrackingConfig
from robot_memory.perception.labelling.vlm_labeller import VlmLabellerConfig, vlm_labeller

WAIT_S = 30.0  # an upper bound for a worker to settle; tests wait on the event, not a sleep


class FixedLabeller:
    """The fallback in these tests: always the same answer, so the source shows."""

    categories = ("mug", "bowl", "can")

    def label(self, crop: ObjectCrop) -> Label:
        return Label("bowl", 0.5, "fixed")

    def close(self) -> None:
        pass


def crop_at(x: float, y: float, color: str = "red") -> ObjectCrop:
    rng = np.random.default_rng(0)
    points = np.column_stack(
        [
            x + rng.uniform(-0.03, 0.03, 200),
            y + rng.uniform(-0.03, 0.03, 200),
            rng.uniform(0, 0.1, 200),
        ]
    )
    image = np.full((40, 40, 3), (200, 30, 30), np.uint8)
    return ObjectCrop(
        points=points,
        pixels=np.full((200, 3), (200, 30, 30), np.uint8),
        support_z=0.0,
        camera_position=np.array([0.0, 0.0, 1.0]),
        image=image,
        mask=np.ones((40, 40), bool),
        color=color,
    )


# -- the default labeller ------------------------------------------------------------
@pytest.mark.parametrize("scene", ["household", "tabletop"])
def test_feature_labeller_names_unseen_layouts(scene):
    """Episodes the classifier never saw (seeds past its training range), both
    cells, perfect and noisy depth: >= 90% of the matched objects right."""
    labeller = FeatureLabeller()
    trained = labeller.config["trained"]["episodes_per_scene"]
    seeds = range(trained + 1000, trained + 1006)
    right, per_category = 0, Counter()
    crops = list(collect_crops(scene, seeds, wrist_looks=2))
    for _, crop, category in crops:
        ok = labeller.label(crop).category == category
        right += ok
        per_category[category, ok] += 1
    assert len(crops) >= 40, f"only {len(crops)} objects matched"
    assert right / len(crops) >= 0.9, per_category


def test_crop_features_are_finite_and_named():
    f = crop_features(crop_at(0.1, 0.0))
    assert f.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(f))
    assert np.all(crop_features(crop_at(0.1, 0.0)) == f)  # deterministic


def test_feature_shortcuts_equal_numpys_own():
    """The features' histogram, medians and per-band spread are computed without
    np.histogram, np.median and np.lexsort; their numbers must not move."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 10, 101, 1000):
        h = rng.random(n)
        h[: min(n, 6)] = np.linspace(0.0, 1.0, HEIGHT_BINS + 1)[: min(n, 6)]  # on the bin edges
        expected = np.histogram(h, bins=HEIGHT_BINS, range=(0.0, 1.0))[0] / n
        assert np.array_equal(_height_histogram(h), expected)
        assert _median(h) == float(np.median(h))
        values = rng.normal(0.0, 0.02, n).round(3)  # ties inside a band
        band = rng.integers(0, HEIGHT_BINS, n)
        spread = np.zeros(HEIGHT_BINS)
        for b in range(HEIGHT_BINS):
            if np.count_nonzero(band == b) >= 3:
                lo, hi = np.percentile(values[band == b], [5.0, 95.0])
                spread[b] = hi - lo
        assert np.allclose(band_spread(values, band, HEIGHT_BINS), spread, rtol=0, atol=1e-12)


def test_labeller_model_folder_is_checked(tmp_path):
    with pytest.raises(LabellerModelError, match="train-labeller"):
        load_classifier(tmp_path)
    folder = tmp_path / "copy"
    shutil.copytree(model_path("object_labeller"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(LabellerModelError, match="sha256"):
        load_classifier(folder)
    shutil.copy(model_path("object_labeller") / "model.safetensors", weights)
    config = json.loads((folder / "config.json").read_text())
    config["feature_names"] = config["feature_names"][::-1]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(LabellerModelError, match="retrain"):
        load_classifier(folder)


def test_factory_rejects_bad_settings():
    with pytest.raises(ValueError, match="labeller must be one of"):
        make_labeller(LabellerSettings(name="yolo"))
    with pytest.raises(ValueError, match="labeller_model_dir"):
        make_labeller(LabellerSettings(name="image_text"))
    with pytest.raises(ValueError, match="model is required"):
        make_labeller(LabellerSettings(name="vlm"))


# -- the VLM labeller ----------------------------------------------------------------
@pytest.fixture(autouse=True)
def vlm_key(monkeypatch):
    monkeypatch.setenv("LABELLER_TEST_KEY", "test-double-key")


def make_vlm(server: ChatCompletionsTestDouble, timeout_s: float = 5.0, **tracking):
    config = VlmLabellerConfig(
        base_url=server.base_url,
        model="test-double",
        api_key_env="LABELLER_TEST_KEY",
        timeout_s=timeout_s,
    )
    return vlm_labeller(config, FixedLabeller(), tracking=TrackingConfig(**tracking))


def test_vlm_answer_is_cached_per_track():
    with ChatCompletionsTestDouble() as server:
        server.push_content({"category": "mug"})
        server.push_content({"category": "can"})
        labeller = make_vlm(server)
        first = labeller.label(crop_at(0.1, 0.0))
        assert first.source == "fixed"  # the fallback answers until the server has
        assert labeller.wait_idle(WAIT_S)
        assert labeller.label(crop_at(0.105, 0.0)) == Label("mug", 1.0, "vlm")  # moved 5 mm
        assert len(server.requests) == 1  # cached: the track is not asked again
        request = server.requests[0]
        assert request.image_urls()[0].startswith("data:image/png;base64,")
        schema = request.body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["category"]["enum"] == ["mug", "bowl", "can", UNKNOWN]
        # a twin of the same colour 8 cm away is another track, asked on its own
        labeller.label(crop_at(0.18, 0.0))
        assert labeller.wait_idle(WAIT_S)
        assert labeller.label(crop_at(0.18, 0.0)).category == "can"
        assert labeller.label(crop_at(0.1, 0.0)).category == "mug"
        assert len(server.requests) == 2
        labeller.close()


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("the object is a mug, I think", "garbage"),
        ({"category": 7}, "garbage"),
        ({"kind": "mug"}, "garbage"),
        ({"category": "spaceship"}, "not a category"),
    ],
)
def test_vlm_garbage_is_counted_and_features_keep_answering(reply, reason):
    with ChatCompletionsTestDouble() as server:
        server.push_content(reply)
        labeller = make_vlm(server, retry_after_s=60.0)
        assert labeller.label(crop_at(0.1, 0.0)).source == "fixed"
        assert labeller.wait_idle(WAIT_S)
        assert labeller.failures_by_reason == {reason: 1}
        again = labeller.label(crop_at(0.1, 0.0))
        assert again.source == "fixed" and len(server.requests) == 1  # not re-asked before retry
        labeller.close()


def test_vlm_slow_server_does_not_hold_the_frame():
    """A server slower than the timeout: label() answers from the fallback while
    the request is still in flight; the timeout is counted; a later frame retries."""
    with ChatCompletionsTestDouble() as server:
        server.push_sleep(3.0, {"category": "mug"})
        server.push_content({"category": "can"})
        labeller = make_vlm(server, timeout_s=0.5, retry_after_s=0.0)
        answer = labeller.label(crop_at(0.1, 0.0))
        assert answer.source == "fixed" and not labeller.idle()  # returned with the ask in flight
        assert labeller.wait_idle(WAIT_S)
        assert labeller.failures_by_reason == {"timeout": 1}
        labeller.label(crop_at(0.1, 0.0))  # retry is due at once (retry_after_s=0)
        assert labeller.wait_idle(WAIT_S)
        assert labeller.label(crop_at(0.1, 0.0)).category == "can"
        labeller.close()


# -- the local image-text model -------------------------------------------------------
WORDS = ["<pad>", "<unk>", "<s>", "</s>", "a", "photo", "of", "mug", "bowl", "can"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A CLIP with random weights, 2 layers of width 32, and a word-level
    tokenizer, saved with save_pretrained the way a user's model folder is."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder = tmp_path_factory.mktemp("tiny_clip")
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(  # CLIP pools at the end token
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    ).save_pretrained(folder)
    layers = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2)
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=len(WORDS), max_position_embeddings=16, eos_token_id=3, bos_token_id=2,
            pad_token_id=0, **layers,
        ),
        vision_config=dict(image_size=32, patch_size=8, **layers),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(folder)
    transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def test_image_text_labeller_from_a_local_folder(tiny_clip, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = ImageTextConfig(str(tiny_clip), min_confidence=0.0)
    labeller = image_text_labeller(config, FixedLabeller())
    scorer = labeller.ask
    p = scorer.probabilities(crop_at(0.1, 0.0).image)
    assert p.shape == (3,) and np.isclose(p.sum(), 1.0) and np.all(p > 0)
    other = np.zeros((40, 40, 3), np.uint8)
    assert not np.allclose(scorer.probabilities(other), p)  # the image matters
    assert labeller.label(crop_at(0.1, 0.0)).source == "fixed"
    assert labeller.wait_idle(WAIT_S)
    answer = labeller.label(crop_at(0.1, 0.0))
    assert answer.source == "image_text" and answer.category in ("mug", "bowl", "can")
    assert answer.category == max(answer.scores, key=answer.scores.get)
    labeller.close()


def test_image_text_needs_a_model_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        image_text_labeller(ImageTextConfig(str(tmp_path)), FixedLabeller())


def test_settings_from_the_nodes_parameters():
    from robot_memory.bringup.node_parameters import PERCEPTION_PARAMETERS

    settings = LabellerSettings.from_parameters(PERCEPTION_PARAMETERS | {"labeller": "rules"})
    assert settings.name == "rules" and settings.vlm_timeout_s == 10.0
    assert type(make_labeller(settings)).__name__ == "ShapeRuleLabeller"
