"""The maths: nn.CrossEntropyLoss taken apart into its stages, in float64. Tensors in, stages out:
no web, no JSON."""

from app.engine.errors import InputError
from app.engine.loss import cross_entropy_stages
from app.engine.stages import REDUCTIONS, STAGES, Reduction, Stages

__all__ = ["REDUCTIONS", "STAGES", "InputError", "Reduction", "Stages", "cross_entropy_stages"]
