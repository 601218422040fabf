"""Placeholder: being written (see the issue tracker). Registers nothing yet."""


def init_app(app) -> None:
    return None
