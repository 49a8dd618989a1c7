"""The error every loader raises for an image or annotation it cannot use."""


class DatasetError(ValueError):
    """An image or annotation of a dataset cannot be used (names the image and the problem)."""
