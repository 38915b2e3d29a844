"""Keyframe schedules: `"0:(1.02), 120:(1.04)"`, values that may be expressions in t and max_f.

The syntax and its meaning are Deforum's (deforum-art/sd-webui-deforum,
animation_key_frames.py): keys in any order, the last of a repeated key wins,
max_f is the index of the last frame, a key whose value uses t holds its
formula until the next key, other keys are interpolated between. Where
stylereel departs from it, on purpose, the README's "Keyframe schedules"
says so and why.

Expressions are parsed with Python's `ast` module and evaluated by a small
walker that knows only numbers, + - * / % **, parentheses, the names t,
max_f, pi and e, and a fixed list of math functions. Nothing is ever
passed to eval or exec; any other syntax is refused when the scene is read.
Schedule strings are user input: their length and nesting are capped and
they parse in linear time, so no string can hang the parser or overflow the
evaluator's stack.
"""

from __future__ import annotations

import ast
import bisect
import functools
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

FUNCTIONS: dict[str, Callable[..., float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "atan2": math.atan2, "sqrt": math.sqrt, "exp": math.exp, "log": math.log,
    "abs": abs, "floor": math.floor, "ceil": math.ceil, "min": min, "max": max, "round": round,
    # numexpr's spellings, as Deforum's schedules write them
    "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan, "arctan2": math.atan2,
    "log10": math.log10, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
}  # fmt: skip
CONSTANTS = {"pi": math.pi, "e": math.e}
VARIABLES = ("t", "max_f")
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}  # fmt: skip
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_LENGTH = 1000  # characters of one expression
_NUMBER = re.compile(r"-?(([1-9]\d*|0)(\.\d*)?|\.\d+)([eE][-+]?\d+)?")  # a literal as Python reads it
MAX_TEXT = 100_000  # characters of a whole schedule string, keyframes included
MAX_DEPTH = 64  # nesting of operations and calls in one expression; the evaluator recurses once a level


class ScheduleError(ValueError):
    """A schedule that cannot be parsed or evaluated; the message says where."""


class Expression:
    """A parsed, checked arithmetic expression in t and max_f."""

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        if len(self.text) > _MAX_LENGTH:
            raise ScheduleError(f"expression longer than {_MAX_LENGTH} characters")
        if _NUMBER.fullmatch(self.text):  # most keyframes: a number needs no parser
            self.tree: ast.expr = ast.Constant(float(self.text))
            self.constant = True
            self.in_t = False
        else:
            try:
                self.tree = ast.parse(self.text, mode="eval").body
            except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a null byte, 3.11.0
                raise ScheduleError(f"cannot parse {self.text!r}") from None
            self._check(self.tree, 1)
            names = {n.id for n in ast.walk(self.tree) if isinstance(n, ast.Name)}
            self.constant = not names & set(VARIABLES)  # the same value at every frame
            self.in_t = "t" in names  # a formula: as a key, it holds from its frame to the next key
        self._value: float | None = None  # a constant's, once evaluated

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ScheduleError(f"{self.text!r}: nested more than {MAX_DEPTH} levels deep")
        depth += 1
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ScheduleError(f"{self.text!r}: only numbers are allowed, not {node.value!r}")
        elif isinstance(node, ast.Name):
            if node.id not in VARIABLES and node.id not in CONSTANTS:
                raise ScheduleError(f"{self.text!r}: unknown name {node.id!r}; allowed: t, max_f, pi, e")
        elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            self._check(node.left, depth)
            self._check(node.right, depth)
        elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            self._check(node.operand, depth)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            if node.func.id not in FUNCTIONS:
                raise ScheduleError(
                    f"{self.text!r}: unknown function {node.func.id!r}; allowed: {', '.join(FUNCTIONS)}"
                )
            for arg in node.args:
                self._check(arg, depth)
        else:
            raise ScheduleError(f"{self.text!r}: {type(node).__name__} is not allowed in an expression")

    def __call__(self, t: float, max_f: float) -> float:
        if self._value is not None:
            return self._value
        try:
            value = float(self._eval(self.tree, {"t": float(t), "max_f": float(max_f)}))
        except (ArithmeticError, ValueError, TypeError) as e:
            raise ScheduleError(f"{self.text!r} at t={t:g}: {e}") from None
        if not math.isfinite(value):
            raise ScheduleError(f"{self.text!r} at t={t:g} is not finite")
        if self.constant:
            self._value = value
        return value

    def _eval(self, node: ast.AST, names: dict[str, float]) -> float:
        if isinstance(node, ast.Constant):
            return float(node.value)  # floats only: 9**9**9 overflows at once instead of growing a bignum
        if isinstance(node, ast.Name):
            return names[node.id] if node.id in names else CONSTANTS[node.id]
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](self._eval(node.left, names), self._eval(node.right, names))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](self._eval(node.operand, names))
        args = [self._eval(a, names) for a in node.args]
        return float(FUNCTIONS[node.func.id](*args))


_KEY = re.compile(r"\s*(-?\d{1,18})\s*:\s*\(")  # 18 digits: int() stays cheap
_OTHER_KEY = re.compile(r"[^:(),]*:\s*\(")  # `max_f-1:(` or `"8":(`: a key, but not a frame number
_PAREN = re.compile(r"[()]")
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class Schedule:
    """Keyframes (frame, expression) in frame order; see __call__ for the value between them."""

    keys: tuple[tuple[int, Expression], ...]
    interpolation: str = "linear"  # or "cubic" (Catmull-Rom through the keys)
    text: str = ""

    @classmethod
    def parse(cls, value: str | int | float, interpolation: str = "linear") -> Schedule:
        """A number, an expression, or keyframes `"F:(EXPR), F:(EXPR), ..."`: F in any order, the last
        of a repeated F wins."""
        if interpolation not in ("linear", "cubic"):
            raise ScheduleError(f"interpolation must be 'linear' or 'cubic', not {interpolation!r}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ScheduleError(f"expected a number or a schedule string, not {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ScheduleError(f"must be a finite number, got {value}")
        text = str(value).strip()
        if len(text) > MAX_TEXT:
            raise ScheduleError(f"schedule longer than {MAX_TEXT} characters ({len(text)})")
        return _parsed(text, interpolation)

    @property
    def constant(self) -> bool:
        """The same value at every frame: one key, not in t or max_f."""
        return len(self.keys) == 1 and self.keys[0][1].constant

    @functools.cached_property
    def _frames(self) -> list[int]:
        return [f for f, _ in self.keys]

    def __call__(self, t: int, max_f: int) -> float:
        """The value at frame t of a shot whose last frame is max_f, as Deforum's get_inbetweens has it:
        from a key whose value uses t the formula runs until the next key; from any other key the value
        moves to the next key's value at that key's frame. Before the first key, its value there holds."""
        frames = self._frames
        i = bisect.bisect_right(frames, t) - 1  # the last key at or before t
        if i < 0:
            return self._at_key(0, t, max_f)
        if self.keys[i][1].in_t:
            return self.keys[i][1](t, max_f)
        if t == frames[i] or i + 1 == len(frames):
            return self._at_key(i, t, max_f)
        u = (t - frames[i]) / (frames[i + 1] - frames[i])
        v0, v1 = self._at_key(i, t, max_f), self._at_key(i + 1, t, max_f)
        if self.interpolation == "linear":
            return v0 + (v1 - v0) * u
        # Catmull-Rom: the neighbours beyond the segment shape the tangents.
        vm = self._at_key(i - 1, t, max_f) if i > 0 else v0
        vp = self._at_key(i + 2, t, max_f) if i + 2 < len(frames) else v1
        return 0.5 * (
            2 * v0
            + (v1 - vm) * u
            + (2 * vm - 5 * v0 + 4 * v1 - vp) * u**2
            + (3 * v0 - vm - 3 * v1 + vp) * u**3
        )

    def _at_key(self, i: int, t: int, max_f: int) -> float:
        """Key i's value at its own frame (a value not in t is the same at t, where errors are reported)."""
        frame, expression = self.keys[i]
        return expression(frame if expression.in_t else t, max_f)


def max_f(length: int) -> int:
    """Deforum's max_f for a shot of `length` frames: the index of its last frame (t runs 0..max_f)."""
    return length - 1


@functools.lru_cache(maxsize=32)
def _parsed(text: str, interpolation: str) -> Schedule:
    """Parse once: every [[shot]] inherits the scene's schedules, and plan_scene parses them again."""
    if not _KEY.match(text) and not _OTHER_KEY.match(text):
        return Schedule(((0, Expression(text)),), interpolation, text)
    return Schedule(tuple(_split_keys(text)), interpolation, text)


def _split_keys(text: str) -> list[tuple[int, Expression]]:
    """`"10:(b), 0:(a), 10:(c)"` -> [(0, a), (10, c)], matching parentheses so expressions may nest them.
    One pass over the text (no copies of the rest), so time is linear in its length (and a sort)."""
    keys: dict[int, Expression] = {}  # Deforum's too: a repeated key takes the last value
    pos = 0
    while pos < len(text):
        m = _KEY.match(text, pos)
        if not m:
            pos = _SPACE.match(text, pos).end()
            raise ScheduleError(
                f"expected 'FRAME:(VALUE)' with FRAME a whole number at {text[pos : pos + 20]!r}"
            )
        frame, depth, start = int(m.group(1)), 1, m.end()
        for paren in _PAREN.finditer(text, start):
            depth += 1 if paren.group() == "(" else -1
            if not depth:
                end = paren.start()
                break
        if depth:
            raise ScheduleError(f"unbalanced parentheses after '{frame}:'")
        if frame < 0:
            raise ScheduleError(f"key frame {frame} is negative")
        keys[frame] = Expression(text[start:end])
        pos = _SPACE.match(text, end + 1).end()
        if pos < len(text) and text[pos] != ",":
            raise ScheduleError(f"expected ',' before {text[pos : pos + 20]!r}")
        pos += 1
    if not keys:
        raise ScheduleError("empty schedule")
    return sorted(keys.items())
