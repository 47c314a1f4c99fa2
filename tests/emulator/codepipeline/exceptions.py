"""CodePipeline errors moto does not define, in the JSON protocol's shape (``__type`` = the class name)."""

from __future__ import annotations

from moto.core.exceptions import JsonRESTError


class _CodePipelineError(JsonRESTError):
    code = 400

    def __init__(self, message: str) -> None:
        super().__init__(type(self).__name__, message)


class ValidationException(_CodePipelineError):
    pass


class ActionTypeNotFoundException(_CodePipelineError):
    pass


class LimitExceededException(_CodePipelineError):
    pass


class JobNotFoundException(_CodePipelineError):
    pass


class InvalidNonceException(_CodePipelineError):
    pass


class InvalidJobStateException(_CodePipelineError):
    pass


class InvalidActionDeclarationException(_CodePipelineError):
    pass


class PipelineExecutionNotStoppableException(_CodePipelineError):
    pass


class DuplicatedStopRequestException(_CodePipelineError):
    pass
