"""Normalisation: volatile values are replaced by what they must satisfy.

A scenario writes the response it expects as plain JSON values, with a `Rule` wherever
the value cannot be known in advance (a generated id, a timestamp, a message). The
response that came back is then normalised against that expectation: where the
expectation holds a rule, the value becomes the rule's token when it satisfies the rule
("µs(lease-1+60s)", "={g1}", "<text>"), and otherwise a description of what it is
instead ("number µs(lease-1+60s)", "µs(lease-1+63.2s)"). Every other value is kept as
it is, so it must match exactly. Two endpoints agree when their normalised responses
are equal; one endpoint meets the expectations when its normalised responses equal the
rendered expectation.

Strings also lose what differs by construction between two runs: the run's queue name
becomes ``{queue}``, its token (the prefix of every task name) ``{run}``, and a
generated task id the symbol it was bound to, ``{g1}``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from backends.limits import INT64, TASK_ID, US

#: Values outside these bounds are not microseconds since the epoch (2001 to 5138).
_MIN_US, _MAX_US = 10**15, 10**17
#: What an optional rule's token stands for when the key is missing.
ABSENT_TOKEN = "<absent>"


@dataclass
class Context:
    """What one scenario on one endpoint has seen so far."""

    queue: str
    token: str
    #: The queue name is replaced in strings only when the run made it up.
    fresh_queue: bool
    tolerance_us: int
    #: label -> (start, end) of the call, µs by the local clock.
    events: dict[str, tuple[int, int]] = field(default_factory=dict)
    #: symbol -> the value a rule bound to it.
    bound: dict[str, Any] = field(default_factory=dict)
    #: generated task id -> its symbol.
    ids: dict[str, str] = field(default_factory=dict)

    def substitute(self, text: str) -> str:
        if text in self.ids:
            return "{" + self.ids[text] + "}"
        if self.fresh_queue:
            text = text.replace(self.queue, "{queue}")
        return text.replace(self.token, "{run}")


class Rule(abc.ABC):
    """A value known only by what it must satisfy."""

    #: Whether the key may be missing from the response altogether.
    optional = False

    @abc.abstractmethod
    def token(self, ctx: Context) -> Any:
        """What the expectation shows in this place."""

    @abc.abstractmethod
    def check(self, value: Any, ctx: Context) -> Any:
        """None when ``value`` satisfies the rule; otherwise what it is instead."""

    def apply(self, value: Any, ctx: Context) -> Any:
        problem = self.check(value, ctx)
        return self.token(ctx) if problem is None else problem

    def absent(self, ctx: Context) -> Any:
        """The normalised value when the key is missing (only asked of optional rules)."""
        return self.token(ctx)


def _int64(value: Any) -> tuple[str, int | None]:
    """("", n) for an int64 string; ("number ", n) for a JSON number; (description, None)."""
    if isinstance(value, str) and INT64.matches(value):
        return "", int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return "number ", value
    return f"<not an int64: {value!r}>", None


def _seconds(us: int) -> str:
    text = f"{us / US:+.1f}s"
    return "" if text in ("+0.0s", "-0.0s") else text


@dataclass(frozen=True)
class At(Rule):
    """A time in µs, as an int64 string, within the call ``event`` plus ``plus`` seconds."""

    event: str
    plus: int = 0
    bind: str | None = None

    def token(self, ctx: Context) -> str:
        return f"µs({self.event}{self.plus:+d}s)" if self.plus else f"µs({self.event})"

    def check(self, value: Any, ctx: Context) -> Any:
        if self.bind:
            ctx.bound[self.bind] = value
        kind, n = _int64(value)
        if n is None:
            return kind
        if not _MIN_US <= n <= _MAX_US:
            return f"<{kind}not µs since the epoch: {n}>"
        start, end = ctx.events[self.event]
        offset = self.plus * US
        if start + offset - ctx.tolerance_us <= n <= end + offset + ctx.tolerance_us:
            return kind + self.token(ctx) if kind else None
        return f"{kind}µs({self.event}{_seconds(n - start)})"


@dataclass(frozen=True)
class Same(Rule):
    """The value bound to ``symbol`` earlier, exactly (an id, a timestamp)."""

    symbol: str

    def token(self, ctx: Context) -> str:
        return f"={self.symbol}"

    def check(self, value: Any, ctx: Context) -> Any:
        if self.symbol not in ctx.bound:
            return f"<{self.symbol} never seen: {value!r}>"
        expected = ctx.bound[self.symbol]
        if value == expected and type(value) is type(expected):
            return None
        if isinstance(value, str) and value in ctx.ids:
            return f"={ctx.ids[value]}"
        kind, n = _int64(value)
        _, m = _int64(expected)
        if n is not None and m is not None:
            return f"{kind}={self.symbol}{_seconds(n - m) or '+0.0s'}"
        return f"<not {self.symbol}: {value!r}>"


@dataclass(frozen=True)
class Generated(Rule):
    """A task id the server made up: in the task-name alphabet, unlike every other id."""

    symbol: str

    def token(self, ctx: Context) -> str:
        return "{" + self.symbol + "}"

    def check(self, value: Any, ctx: Context) -> Any:
        if not TASK_ID.matches(value):
            return f"<not a task id: {value!r}>"
        if value in ctx.ids:
            return f"<the same id as {{{ctx.ids[value]}}}>"
        ctx.bound[self.symbol] = value
        ctx.ids[value] = self.symbol
        return None


@dataclass(frozen=True)
class SecondsOf(Rule):
    """Seconds as an int64 string: the µs time bound to ``symbol``, rounded down."""

    symbol: str

    def token(self, ctx: Context) -> str:
        return f"s({self.symbol})"

    def check(self, value: Any, ctx: Context) -> Any:
        kind, n = _int64(value)
        if n is None:
            return kind
        _, us = _int64(ctx.bound.get(self.symbol))
        if us is None:
            return f"<{self.symbol} never seen: {value!r}>"
        delta = n - us // US
        if delta == 0 and not kind:
            return None
        return f"{kind}s({self.symbol}){delta:+d}s" if delta else kind + self.token(ctx)


@dataclass(frozen=True)
class ZeroOrAbsent(Rule):
    """An int64 that may be "0" or left out (``stats.oldestTask`` of an empty queue)."""

    optional = True

    def token(self, ctx: Context) -> str:
        return "zero or absent"

    def check(self, value: Any, ctx: Context) -> Any:
        kind, n = _int64(value)
        if n == 0 and (kind or value == "0"):
            return kind + "0" if kind else None
        return f"<not zero: {value!r}>"


@dataclass(frozen=True)
class AtLeast(Rule):
    """An int64 string of at least ``minimum``: a count that earlier runs may have raised."""

    minimum: int

    def token(self, ctx: Context) -> str:
        return f">={self.minimum}"

    def check(self, value: Any, ctx: Context) -> Any:
        kind, n = _int64(value)
        if n is None or kind:
            return kind + (str(n) if n is not None else "")
        return None if n >= self.minimum else str(n)


@dataclass(frozen=True)
class Text(Rule):
    """A human-readable message: any non-empty string."""

    def token(self, ctx: Context) -> str:
        return "<text>"

    def check(self, value: Any, ctx: Context) -> Any:
        return None if isinstance(value, str) and value.strip() else f"<not a message: {value!r}>"


@dataclass(frozen=True)
class AsFound(Rule):
    """Whatever the endpoint says, compared exactly between two endpoints: the settings
    of a pinned queue (ACL, maxLeases), which the battery cannot know."""

    symbol: str
    optional = True

    def token(self, ctx: Context) -> Any:
        return plain(ctx.bound.get(self.symbol, ABSENT_TOKEN), ctx)

    def check(self, value: Any, ctx: Context) -> Any:
        ctx.bound[self.symbol] = value
        return None

    def absent(self, ctx: Context) -> Any:
        ctx.bound[self.symbol] = ABSENT_TOKEN
        return ABSENT_TOKEN


def plain(value: Any, ctx: Context) -> Any:
    """``value`` with the run's names replaced in every string."""
    if isinstance(value, str):
        return ctx.substitute(value)
    if isinstance(value, dict):
        return {key: plain(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item, ctx) for item in value]
    return value


def normalise(actual: Any, expected: Any, ctx: Context) -> Any:
    """``actual`` with each value in a rule's place replaced as the module docstring says."""
    if isinstance(expected, Rule):
        return expected.apply(actual, ctx)
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = {key: normalise(value, expected.get(key), ctx) for key, value in actual.items()}
        for key, rule in expected.items():
            if key not in actual and isinstance(rule, Rule) and rule.optional:
                out[key] = rule.absent(ctx)
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        return [normalise(value, expected[i] if i < len(expected) else None, ctx) for i, value in enumerate(actual)]
    return plain(actual, ctx)


def render(expected: Any, ctx: Context) -> Any:
    """The expectation as a normalised response that meets it would read."""
    if isinstance(expected, Rule):
        return expected.token(ctx)
    if isinstance(expected, dict):
        return {key: render(value, ctx) for key, value in expected.items()}
    if isinstance(expected, list):
        return [render(value, ctx) for value in expected]
    return plain(expected, ctx)
