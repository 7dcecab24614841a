"""Settings, read once from the environment (prefix APP_)."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = PACKAGE_DIR / "weights" / "cifar_net.pth"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APP_", env_file=".env", extra="ignore")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    weights: Path = DEFAULT_WEIGHTS
    # Training metrics shown by GET /model; default: the JSON beside the weights.
    metrics: Path | None = None
    torch_threads: int | None = None
    # Threads that run large requests' torch work off the event loop. One process's threads share
    # the GIL, so a second one mostly contends with the first; scale out with workers instead.
    compute_threads: Annotated[int, Field(ge=1)] = 1

    # Caps on what one request may ask of the server (documented in the README).
    max_json_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    max_logits: int = 1_000_000
    max_dims: int = 8
    max_classes: int = 100_000
    max_images: int = 64
    max_image_pixels: int = 40_000_000
    # Decoding cost follows pixels, not bytes (a 2 kB WebP can declare 40 megapixels).
    max_request_pixels: int = 100_000_000
    # An uploaded `weights` file (the Net's state_dict is 250 KB).
    max_weights_bytes: int = 2 * 1024 * 1024

    log_json: bool = False

    # POST /train/live: each job's wall-clock cap, and the torch threads of the job's own thread.
    live_cap_s: Annotated[float, Field(gt=0)] = 60.0
    live_threads: Annotated[int, Field(ge=1)] = 1

    @property
    def metrics_path(self) -> Path:
        return self.metrics or self.weights.with_suffix(".json")


@lru_cache
def get_settings() -> Settings:
    return Settings()
