"""The library's small error hierarchy: every error a caller can cause is a ValueError."""

from __future__ import annotations

from typing import Any


class AugmentError(ValueError):
    """Base of antifit's augmentation errors. ``field`` names where the problem is, if known."""

    def __init__(
        self, message: str, *, field: str | None = None, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # every problem found, as {"field": ..., "message": ...}, for APIs that list them all
        self.details = (
            details if details is not None else [{"field": field or "", "message": message}]
        )

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable whatever a subclass's __init__ takes: errors cross process boundaries
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[AugmentError], args: tuple[Any, ...], state: dict[str, Any]) -> AugmentError:
    err = cls.__new__(cls)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class SpecError(AugmentError):
    """A pipeline spec that does not validate (unknown augmenter, value out of range, ...)."""


class RecordError(AugmentError):
    """A record that cannot be augmented (missing text, text not a string, ...)."""


class ResourceMissing(AugmentError):
    """An offline resource (WordNet, Apertium, a model directory) is not installed."""

    def __init__(self, resource: str, hint: str) -> None:
        super().__init__(f"{resource} is not available: {hint}", field=None)
        self.resource = resource
        self.hint = hint
