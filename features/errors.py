"""Errors a user can act on. The CLI prints their message as one line and exits with status 2;
the service turns them into 4xx responses. Anything else is a bug and keeps its traceback."""


class CargoriskError(Exception):
    """A problem with the input or the environment that the user can fix."""


class ContractError(CargoriskError):
    """Data does not follow the shipments/outcomes contract."""
