"""Every exception class Tropa raises on purpose."""

from __future__ import annotations


class TropaError(Exception):
    """Base of Tropa's own errors."""


class JourneyInvalid(TropaError):
    """A journey's YAML does not validate; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n\n".join(p.render() for p in problems))


class Problem:
    """One error in a journey file, with its place and a hint how to fix it."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "<journey>",
        line: int | None = None,
        column: int | None = None,
        line_text: str | None = None,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.column = column
        self.line_text = line_text
        self.path = path
        self.hint = hint

    def location(self) -> str:
        """`file:line:column`, as editors and terminals link it."""
        if self.line is None:
            return self.source
        return f"{self.source}:{self.line}:{self.column or 1}"

    def render(self) -> str:
        """The error as shown to a marketer: place, message, the line with a caret, the fix."""
        parts = [f"{self.location()}: error: {self.message}"]
        if self.line_text is not None and self.column is not None:
            parts.append(f"    {self.line_text}")
            parts.append("    " + " " * (self.column - 1) + "^")
        if self.hint:
            parts.append(f"  hint: {self.hint}")
        return "\n".join(parts)

    def as_dict(self) -> dict[str, object]:
        """The error as an API response item."""
        return {
            "message": self.message,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "hint": self.hint,
            "text": self.render(),
        }


class ProviderError(TropaError):
    """A channel provider refused or failed a send."""

    def __init__(self, message: str, *, final: bool, reason: str) -> None:
        self.final = final
        self.reason = reason
        super().__init__(message)


class MessageInvalid(ProviderError):
    """The message itself is wrong (bad recipient, empty or too long text): never retried."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, final=True, reason=reason)


class ProviderUnavailable(ProviderError):
    """The provider or the sender's account is not usable now: retried until it is."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, final=False, reason=reason)


class SettingsUnsafe(TropaError):
    """A production process (`tropa api`, `tropa worker`) was given development secrets;
    the message names each setting and how to fix it."""


class ProviderAnswerInvalid(ProviderError):
    """The provider answered in a way Tropa cannot use (a 200 without a message id): final,
    since asking again would get the same answer or send the message twice."""

    def __init__(self, message: str, *, reason: str = "no_message_id") -> None:
        super().__init__(message, final=True, reason=reason)


class LoyaltyError(TropaError):
    """A loyalty operation cannot be done as asked; the message says why and what to do."""


class LoyaltyNotFound(LoyaltyError):
    """A customer, operation, coupon series or code the ledger does not know."""


class Overdraw(LoyaltyError):
    """A write-off asks for more than the active balance; nothing was taken."""

    def __init__(self, requested: int, available: int) -> None:
        self.requested = requested
        self.available = available
        super().__init__(f"cannot write off {requested}: only {available} is available; "
                         "write off at most the available balance")


class LoyaltyRefused(LoyaltyError):
    """A rule refused the operation (the welcome limit per phone, a spent coupon)."""

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class TaskNotFound(TropaError):
    """No task has this id."""

    def __init__(self, task_id: int) -> None:
        self.task_id = task_id
        super().__init__(f"task {task_id} does not exist; list tasks with GET /v1/tasks")


class TaskConflict(TropaError):
    """The task's state does not allow the change (completing a task that is done)."""

    def __init__(self, task_id: int, status: str, action: str) -> None:
        self.task_id = task_id
        self.status = status
        super().__init__(f"task {task_id} is {status}; only open or assigned tasks can be "
                         f"{action}")


class AudienceInvalid(JourneyInvalid):
    """An audience filter does not validate; carries every problem, each with its place.

    A kind of JourneyInvalid: a filter is written in the same language, so every caller that
    shows a journey's problems shows a filter's the same way."""


class AudienceNotFound(TropaError):
    """No saved audience has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"saved audience `{name}` does not exist; list them with "
                         "GET /v1/audiences or save it with PUT /v1/audiences/{name}")


class SimulationInvalid(TropaError):
    """A simulation's input is wrong (customer, events, time span); each item names the place
    (file:line, JSON path, option) and the fix."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SimulationBusy(TropaError):
    """As many simulations as allowed are running already."""
