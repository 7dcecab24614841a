"""Request and response shapes of the JSON API, with the examples /docs shows."""

from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field

from app.engine import InputError, Reduction

# A number or an arbitrarily nested array of numbers (null marks a non-finite value in answers).
NESTED: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "array"}]}},
    ]
}
ANSWER: dict[str, Any] = {
    "anyOf": [
        {"type": "number"},
        {"type": "null"},
        {
            "type": "array",
            "items": {"anyOf": [{"type": "number"}, {"type": "null"}, {"type": "array"}]},
        },
    ]
}
MAX_UNKNOWN_KEYS = 10
TUTORIAL_LOGITS: list[Any] = [-1.2, -2.1, 0.6, 2.3, -0.5, 1.4, 0.3, -0.8, -0.3, -1.6]


class BodyError(InputError):
    """The body is not JSON at all."""

    status = 400
    code = "body_not_json"


class JsonBody(BaseModel):
    """A request's JSON body, parsed with orjson and validated by the model."""

    @classmethod
    def parse(cls, body: bytes) -> Self:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BodyError(f"body is not valid JSON: {e}", error=str(e)) from None
        if isinstance(data, dict) and len(data) > len(cls.model_fields) + MAX_UNKNOWN_KEYS:
            # extra="forbid" makes an error of each unknown key, and pydantic takes seconds to
            # list 100,000 errors: validate the known keys and the first few unknown ones only.
            unknown = [key for key in data if key not in cls.model_fields][:MAX_UNKNOWN_KEYS]
            data = {key: data[key] for key in [*cls.model_fields, *unknown] if key in data}
        return cls.model_validate(data)

    @classmethod
    def openapi_body(cls) -> dict[str, Any]:
        """The requestBody of a route that reads its body itself (the schema /docs shows)."""
        return {
            "required": True,
            "content": {"application/json": {"schema": cls.model_json_schema()}},
        }


class LossRequest(JsonBody):
    """The arguments of torch.nn.functional.cross_entropy, under PyTorch's own names."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"logits": TUTORIAL_LOGITS, "target": 3},
                {
                    "logits": [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]],
                    "target": [0, 2],
                    "weight": [1.0, 2.0, 0.5],
                    "reduction": "mean",
                    "label_smoothing": 0.1,
                },
                {"logits": [[2.0, 0.5, -1.0]], "target": [[0.7, 0.2, 0.1]]},
            ]
        },
    )

    logits: Any = Field(
        description="Raw scores, shape (C), (N, C) or (N, C, d1, ..., dK); the class dimension is "
        "0 for a 1-D input and 1 otherwise.",
        json_schema_extra=NESTED,
    )
    target: Any = Field(
        description="Class indices (integers, the logits' shape without C) or class "
        "probabilities (the logits' own shape).",
        json_schema_extra=NESTED,
    )
    # A list here (JSON text is for multipart forms only); its values are checked by to_tensor.
    weight: list[Any] | None = Field(
        None,
        description="A manual rescaling weight per class, length C.",
        json_schema_extra={
            "anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}]
        },
    )
    ignore_index: int = Field(-100, description="Class-index targets equal to this are ignored.")
    reduction: Reduction = "mean"
    label_smoothing: float = Field(0.0, ge=0.0, le=1.0)
    fields: list[str] | None = Field(
        None,
        description="Only these stages in the answer (default: all of them).",
        fail_fast=True,  # one error, not one per item of a list of a million numbers
    )


def _stage(description: str) -> Any:
    return Field(None, description=description, json_schema_extra=ANSWER)


class LossStages(BaseModel):
    """Every stage of the computation; arrays keep the input's layout, null marks NaN or inf."""

    logits: Any = _stage("z: the input, as float64.")
    max_logit: Any = _stage("m = max_c z_c per position: the shift for numerical stability.")
    shifted: Any = _stage("z - m: every value is <= 0, so exp cannot overflow.")
    exp: Any = _stage("exp(z - m).")
    sum_exp: Any = _stage("sum_c exp(z_c - m) per position.")
    log_sum_exp: Any = _stage("m + log(sum_exp) = log sum_c exp(z_c).")
    softmax: Any = _stage("p = exp(z - m) / sum_exp.")
    log_probs: Any = _stage("log_softmax: z - log_sum_exp.")
    one_hot: Any = _stage(
        "The class-index target as a one-hot array (null for probability targets)."
    )
    target_dist: Any = _stage("q: the target distribution actually used, after label smoothing.")
    per_element_loss: Any = _stage("-sum_c w_c q_c log p_c per position; 0 where ignored.")
    loss: Any = _stage("The reduced loss (an array for reduction='none').")
    grad: Any = _stage("d loss / d logits (of the sum, for reduction='none').")
    predicted: Any = _stage("argmax_c z_c per position.")
    denominator: Any = _stage("What reduction='mean' divides by.")
    torch_loss: Any = _stage(
        "torch.nn.functional.cross_entropy on the same input, as a cross-check."
    )
    warnings: list[str] = Field(
        default_factory=list, description="Why a value is NaN or inf, and other notes."
    )
    warning_codes: list["WarningCode"] = Field(
        default_factory=list,
        description="The warnings as stable codes and the values in their sentences, in the "
        "same order, for a client that says them in its own language.",
    )


class ImageResult(BaseModel):
    filename: str
    format: str
    original_size: tuple[int, int]
    predicted_class: str
    label: int | None = Field(description="The label sent for this image, if any.")
    target: int = Field(
        description="The class index used as target: the label, else the prediction."
    )
    preview: str = Field(description="data:image/png;base64 URL of the 32x32 picture the Net saw.")


class ErrorObject(BaseModel):
    code: str = Field(description="A stable snake_case name for the error.")
    detail: str = Field(description="What is wrong, as a sentence that names the file.")
    params: dict[str, Any] | None = Field(
        None, description="The values in the sentence (absent when it has none)."
    )


class ImageRefused(BaseModel):
    """A picture that cannot be used; the others are computed without it (and its label)."""

    filename: str
    error: ErrorObject = Field(description="Why, in the shape of the API's 4xx answers.")


WeightsSource = Annotated[
    Literal["shipped", "upload"],
    Field(description="Which weights ran: the app's (shipped) or the request's `weights` file."),
]
WeightsSha256 = Annotated[
    str, Field(description="The sha256 of the weights file that ran (as /health names it).")
]


class PredictAnswer(LossStages):
    images: list[ImageResult | ImageRefused] = Field(
        description="One per picture sent, in the order sent. A picture that cannot be used "
        "(not an allowed format, damaged, over the pixels per image) carries `error` instead "
        "and is left out of the stages, its label with it; the request is refused (422) only "
        "when no picture can be used."
    )
    row_images: list[int] = Field(
        description="Row r of every stage (logits, softmax, per_element_loss, predicted, ...) "
        "belongs to images[row_images[r]]: the indices of the pictures that could be used, in "
        "order ([0, 1, ..., N-1] when all of them could)."
    )
    classes: list[str]
    target_source: Literal["labels", "predicted", "mixed"] = Field(
        description="Where the targets came from: the labels sent, the predicted classes, or "
        "both (an empty label means: use the prediction for that image)."
    )
    weights_source: WeightsSource
    weights_sha256: WeightsSha256


class EvaluateAnswer(BaseModel):
    """A Net scored on the 1,000 test pictures the app ships (100 of each class)."""

    test_accuracy: float = Field(description="The fraction of the pictures classified right.")
    per_class_accuracy: dict[str, float] = Field(description="Per class: the fraction right.")
    confusion_matrix: list[list[int]] = Field(
        description="10 x 10 counts: row = true class, column = predicted class."
    )
    mean_loss: float = Field(description="F.cross_entropy of the Net's logits, mean reduction.")
    test_images: int
    weights_source: WeightsSource
    weights_sha256: WeightsSha256


class ErrorAnswer(BaseModel):
    detail: str = Field(description="What is wrong with the request: a sentence.")
    code: str = Field(description="A stable snake_case name for the error.")
    params: dict[str, Any] = Field(description="The values in the sentence, by name.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="A 422 of validation only: each error's loc, msg and type."
    )


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorAnswer, "description": text}
    for code, text in {
        400: "The body is not valid JSON or not valid multipart.",
        408: "The body did not arrive in time.",
        413: "The body is over the size cap.",
        422: "The input is well-formed but not something cross_entropy accepts.",
    }.items()
}


# POST /step: the tutorial's five training lines on uploaded pictures.


class WarningCode(BaseModel):
    code: str = Field(description="A stable snake_case name for the warning.")
    params: dict[str, Any] = Field(description="The values in the warning's sentence.")


class StepAnswer(BaseModel):
    """What `optimizer.zero_grad(); outputs = net(inputs); loss = criterion(outputs, labels);
    loss.backward(); optimizer.step()` did, `steps` times on one batch, on a copy of the Net."""

    losses: list[float | None] = Field(
        description="steps + 1 batch losses on the same pictures: before the first step, then "
        "after each step (F.cross_entropy in float64 on the Net's float32 outputs; null where "
        "not finite)."
    )
    before: LossStages = Field(description="Every /loss stage of the first forward pass.")
    after: LossStages = Field(
        description="Every /loss stage after the last step: after.loss is losses[-1] (to the "
        "last digit or so; after.torch_loss is exactly losses[-1])."
    )
    grad_logits: list[list[float | None]] = Field(
        description="d loss / d outputs at the first step, N x 10, as autograd computed it "
        "(float32): (softmax - one_hot) / N."
    )
    grads: dict[str, Any] = Field(
        description='The gradients of fc3 at the first step: "fc3.weight" (10 x 84) = '
        'grad_logits^T . activations, "fc3.bias" (10) = the column sums of grad_logits.'
    )
    activations: list[list[float]] = Field(
        description="The 84 inputs of fc3 (the output of relu(fc2)) per picture, first pass."
    )
    grad_norms: dict[str, float | None] = Field(
        description="The L2 norm of each parameter's gradient at the first step, keyed by the "
        "state_dict names (conv1.weight, conv1.bias, ..., fc3.bias)."
    )
    update_norms: dict[str, float | None] = Field(
        description="The L2 norm of each parameter's total change over all the steps (after the "
        "first step alone it is lr x its gradient's norm: the momentum buffer starts as the "
        "gradient)."
    )
    images: list[ImageResult] = Field(
        description="Per picture, as /predict describes it; predicted_class is before the step."
    )
    classes: list[str]
    lr: float
    momentum: float
    steps: int
    init: Literal["served", "fresh"] = Field(
        description="served: the app's weights; fresh: Net() after torch.manual_seed(seed)."
    )
    seed: int
    criterion_mistake: str = Field(
        description="What this torch raises for `loss = nn.CrossEntropyLoss(outputs, labels); "
        "loss.backward()` on these outputs (the class called where an instance belongs)."
    )
    warnings: list[str] = Field(description="Why a value is null (the training diverged).")
    warning_codes: list[WarningCode] = Field(description="The warnings, as codes and values.")
    weights_source: WeightsSource
    weights_sha256: WeightsSha256
