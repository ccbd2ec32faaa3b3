"""Published architectures no one here wrote, built with fresh weights (nothing is
downloaded) at small input sizes, for the round-trip tests: Keras's applications families
and a model library's backbones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SMALL = {"weights": None, "input_shape": (32, 32, 3), "classes": 10}


def _app(name: str, **changes: Any) -> Callable[[], Any]:
    def make() -> Any:
        import keras

        return getattr(keras.applications, name)(**{**SMALL, **changes})

    return make


# One member per family (the deepest where two differ in how they are built); input sizes
# as small as each allows.
APPLICATIONS: dict[str, Callable[[], Any]] = {
    "vgg16": _app("VGG16"),
    "resnet50": _app("ResNet50"),
    "resnet50v2": _app("ResNet50V2"),
    "mobilenet": _app("MobileNet"),
    "mobilenet_v2": _app("MobileNetV2"),
    "mobilenet_v3_small": _app("MobileNetV3Small"),
    "densenet121": _app("DenseNet121"),
    "efficientnet_b0": _app("EfficientNetB0"),
    "efficientnet_v2_b0": _app("EfficientNetV2B0"),
    "convnext_tiny": _app("ConvNeXtTiny"),
    "xception": _app("Xception", input_shape=(71, 71, 3)),
    "inception_v3": _app("InceptionV3", input_shape=(75, 75, 3)),
    "inception_resnet_v2": _app("InceptionResNetV2", input_shape=(75, 75, 3)),
    "nasnet_mobile": _app("NASNetMobile"),
}


def _hub(name: str, **config: Any) -> Callable[[], Any]:
    def make() -> Any:
        import keras_hub

        return getattr(keras_hub.models, name)(**config)

    return make


TRANSFORMER = {"num_layers": 2, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64}
TEXT = {**TRANSFORMER, "vocabulary_size": 100, "max_sequence_length": 16}
BACKBONES: dict[str, Callable[[], Any]] = {
    "vit": _hub(
        "ViTBackbone",
        image_shape=(32, 32, 3),
        patch_size=8,
        num_layers=2,
        num_heads=2,
        hidden_dim=32,
        mlp_dim=64,
    ),
    "bert": _hub("BertBackbone", **TEXT),
    "gpt2": _hub("GPT2Backbone", **TEXT),
    "distil_bert": _hub("DistilBertBackbone", **TEXT),
    "roberta": _hub("RobertaBackbone", **TEXT),
}
