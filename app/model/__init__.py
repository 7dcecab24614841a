"""The tutorial's Net: its layers and classes, its input contract, its weights, and decoding
uploaded pictures into that input. Imports only the engine."""

from app.model.inputs import MEAN, SIZE, STD, normalize
from app.model.net import CLASSES, INPUT_SHAPE, Net, architecture, inference, parameter_count
from app.model.weights import (
    DeviceError,
    NetCache,
    WeightsError,
    load_net,
    net_from_bytes,
    pick_device,
    sha256_file,
)

__all__ = [
    "CLASSES",
    "INPUT_SHAPE",
    "MEAN",
    "SIZE",
    "STD",
    "DeviceError",
    "Net",
    "NetCache",
    "WeightsError",
    "architecture",
    "inference",
    "load_net",
    "net_from_bytes",
    "normalize",
    "parameter_count",
    "pick_device",
    "sha256_file",
]
