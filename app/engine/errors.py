"""The one kind of error for input a user sent: every layer raises it (or a subclass)."""

from typing import Any


class InputError(ValueError):
    """Input that cannot be used. str(e) is a sentence for the user saying what is wrong; `status`
    is the HTTP status the web layer answers with (422: well-formed, but not something we can
    compute with), `code` a stable snake_case name for it and `params` the values in the
    sentence, so that a client can say it in its own language."""

    status = 422
    code = "invalid_input"

    def __init__(self, detail: str, *, code: str | None = None, **params: Any) -> None:
        super().__init__(detail)
        if code is not None:
            self.code = code
        self.params = params
