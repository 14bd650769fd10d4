"""Domain services. Their refusals are `ServiceError`s, which the API turns into JSON 4xx."""


class ServiceError(Exception):
    """A refusal the caller can act on: HTTP status, stable reason code, readable message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
