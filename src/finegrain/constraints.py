"""Declared validation rules, one per setting, as scikit-learn's ``_parameter_constraints``:
the setting's owner declares them once (``TrainConfig.CONSTRAINTS``) and every reader checks a
value against them (the dataclass itself, ``finegrain train``, ``finegrain benchmark`` and its
``--axis`` values), so a rule and its message are written once.

>>> rule = Interval(float, 0, None, closed="neither")
>>> rule.describe()
'a number > 0'
>>> check("lr", -1.0, [rule])
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: lr must be a number > 0, got -1.0
>>> check("lr", float("nan"), [rule])
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: lr must be a number > 0, got nan
>>> check("augment_on", "gpu", [Options({"auto", "loader", "device"})])
Traceback (most recent call last):
...
finegrain.errors.FinegrainError: augment_on must be one of auto, device, loader, got 'gpu'
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from finegrain.errors import FinegrainError


class Constraint(Protocol):
    """A rule a value may satisfy; a setting is valid when it satisfies any of its rules."""

    def allows(self, value: Any) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Interval:
    """A finite number of ``kind`` (``int`` or ``float``; a bool is neither) between ``low``
    and ``high`` (``None``: unbounded); ``closed`` says which ends belong to it: ``"both"``,
    ``"left"``, ``"right"`` or ``"neither"``."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind is int and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return not (
            self.high is not None and (value > self.high or (value == self.high and not right))
        )

    def describe(self) -> str:
        noun = "an integer" if self.kind is int else "a number"
        low = None if self.low is None else (">=" if self.closed in ("both", "left") else ">")
        high = None if self.high is None else ("<=" if self.closed in ("both", "right") else "<")
        if low and high:
            open_left = "[" if low == ">=" else "("
            open_right = "]" if high == "<=" else ")"
            return f"{noun} in {open_left}{_text(self.low)}, {_text(self.high)}{open_right}"
        if low:
            return f"{noun} {low} {_text(self.low)}"
        if high:
            return f"{noun} {high} {_text(self.high)}"
        return f"a finite {noun.split()[-1]}"


@dataclass(frozen=True)
class Options:
    """One of a set of values."""

    values: frozenset | set

    def allows(self, value: Any) -> bool:
        try:
            return value in self.values
        except TypeError:  # unhashable
            return False

    def describe(self) -> str:
        return "one of " + ", ".join(sorted(map(str, self.values)))


@dataclass(frozen=True)
class Each:
    """A sequence whose every item satisfies ``rule`` (``length``: how many, ``None``: any)."""

    rule: Constraint
    length: int | None = None

    def allows(self, value: Any) -> bool:
        if isinstance(value, str) or not isinstance(value, Sequence):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return all(self.rule.allows(v) for v in value)

    def describe(self) -> str:
        count = f"{self.length} values" if self.length else "values"
        return f"{count}, each {self.rule.describe()}"


@dataclass(frozen=True)
class Boolean:
    """``True`` or ``False`` (not a number equal to one: ``3`` is refused, ``1`` too)."""

    def allows(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class IsNone:
    """``None`` (left to a default chosen later)."""

    def allows(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


def _text(x: float) -> str:
    return f"{x:g}"


def violation(value: Any, rules: Iterable[Constraint]) -> str | None:
    """``None`` when ``value`` satisfies one of ``rules``, else what it must be."""
    rules = list(rules)
    if not rules or any(rule.allows(value) for rule in rules):
        return None
    return " or ".join(rule.describe() for rule in rules if not isinstance(rule, IsNone))


def check(name: str, value: Any, rules: Iterable[Constraint]) -> None:
    """Raise a :class:`FinegrainError` ``"<name> must be <rule>, got <value>"`` unless
    ``value`` satisfies one of ``rules``."""
    wanted = violation(value, rules)
    if wanted is not None:
        raise FinegrainError(f"{name} must be {wanted}, got {value!r}")


def check_all(values: Mapping[str, Any], constraints: Mapping[str, Iterable[Constraint]]) -> None:
    """:func:`check` every value of ``values`` that ``constraints`` declares rules for."""
    for name, value in values.items():
        if name in constraints:
            check(name, value, constraints[name])
