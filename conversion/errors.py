"""The one exception the conversion package raises."""


class ConversionError(Exception):
    """A document that cannot be converted; ``reason`` is safe to show after "Conversion error: "."""

    def __init__(self, reason: str):
        super().__init__(reason)
        # A short English text: never a path, a stack trace or an exception's repr.
        self.reason = reason
