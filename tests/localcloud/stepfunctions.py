"""Placeholder."""


def install() -> None:
    pass


def reset() -> None:
    pass
