"""What the supervision API answers when it cannot do what was asked:
each error names the child and says why, as OTP's ``{error, Reason}``."""

from __future__ import annotations


class SupervisionError(RuntimeError):
    """Base of the errors a supervisor's API raises about one child."""

    def __init__(self, child_id: str, why: str) -> None:
        super().__init__(f"child {child_id!r}: {why}")
        self.child_id = child_id


class ChildRunning(SupervisionError):
    """The child runs (or is being restarted): stop it first (OTP's
    ``running`` / ``restarting``)."""

    def __init__(self, child_id: str, state: str) -> None:
        super().__init__(child_id, f"is {state}; terminate it first")
        self.state = state


class ChildNotRunning(SupervisionError):
    """The child is not running now and was not back in time, or will not
    come back (stopped, deleted, its supervisor gone)."""


class ChildNotFound(ChildNotRunning, LookupError):
    """No child with this id (OTP's ``not_found``)."""

    def __init__(self, child_id: str) -> None:
        super().__init__(child_id, "no such child")


class ChildStartFailed(SupervisionError):
    """A child's start raised, or its ``on_start`` failed or overran its
    ``start_timeout``; the cause (``__cause__`` and ``reason``) says why."""

    def __init__(self, child_id: str, reason: BaseException) -> None:
        super().__init__(child_id, f"failed to start: {reason!r}")
        self.reason = reason
