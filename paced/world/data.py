"""Problem generators of the toy world.

- learnable tier: ``@`` + a chain mod 16 with ops ``+ - *`` (length 1..max_len), e.g. the prompt
  ``@D+8*F-9-B*6*4-4..=`` (padded with ``..`` to ``max_len`` slots) and the solution
  ``D,5,B,2,7,A,8,4,#4``: the running value after each step, two characters a step, so an
  operand always sits at the same offset from the step that uses it; the answer follows ``#``.
- intractable tier: ``$`` + a chain mod 24 (digits 0-9A-N), length ``intractable_min_len..max_len``,
  ``*`` operands only units mod 24 (else chains collapse to 0 and become guessable); any problem a
  mod-16 solver would answer right is rejected.
- probe: ``!xyz=`` -> one letter, scored as 4-way multiple choice and by greedy exact match.

All functions take an explicit ``random.Random``; nothing here touches a global RNG.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

DIGITS = string.digits + string.ascii_uppercase  # value v is written DIGITS[v]
OPS: dict[str, Callable[[int, int], int]] = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
                                             "*": lambda a, b: a * b}
LETTERS = string.ascii_lowercase


@dataclass(frozen=True)
class TierSpec:
    """One arithmetic tier: its prompt marker, modulus, chain lengths and ``*`` operands."""

    tier: str
    marker: str
    modulus: int
    min_len: int
    max_len: int
    mul_operands: tuple[int, ...] | None = None  # None: any residue

    def operands(self, op: str) -> tuple[int, ...] | range:
        if op == "*" and self.mul_operands is not None:
            return self.mul_operands
        return range(self.modulus)


def learnable_spec(max_len: int) -> TierSpec:
    return TierSpec("learnable", "@", 16, 1, max_len)


def intractable_spec(min_len: int, max_len: int) -> TierSpec:
    units = tuple(u for u in range(24) if _gcd(u, 24) == 1)  # 1, 5, 7, 11, 13, 17, 19, 23
    return TierSpec("intractable", "$", 24, min_len, max_len, units)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def run_chain(a0: int, steps: list[tuple[str, int]], modulus: int) -> list[int]:
    """The running values ``[a0, v1, ..., vn]`` of a chain, each reduced mod ``modulus``."""
    values = [a0 % modulus]
    for op, b in steps:
        values.append(OPS[op](values[-1], b) % modulus)
    return values


def render(spec: TierSpec, a0: int, steps: list[tuple[str, int]], pad_to: int) -> tuple[str, str, str]:
    """(prompt, solution, answer) text of a chain; the prompt is padded to ``pad_to`` slots."""
    values = run_chain(a0, steps, spec.modulus)
    body = DIGITS[a0] + "".join(op + DIGITS[b] for op, b in steps) + ".." * (pad_to - len(steps))
    answer = DIGITS[values[-1]]
    solution = ",".join(DIGITS[v] for v in values) + ",#" + answer
    return spec.marker + body + "=", solution, answer


def _mod16_guess(a0: int, steps: list[tuple[str, int]]) -> int:
    """What a mod-16 solver answers: the same chain on the digits' values, reduced mod 16."""
    return run_chain(a0, steps, 16)[-1]


def sample_chain(rng: random.Random, spec: TierSpec, pad_to: int) -> dict[str, Any]:
    """One problem of ``spec`` as a row (without id); rejection-samples the intractable filter."""
    while True:
        length = rng.randint(spec.min_len, spec.max_len)
        a0 = rng.randrange(spec.modulus)
        steps = []
        for _ in range(length):
            op = rng.choice("+-*")
            steps.append((op, rng.choice(spec.operands(op))))
        prompt, solution, answer = render(spec, a0, steps, pad_to)
        if spec.modulus != 16 and DIGITS[_mod16_guess(a0, steps)] == answer:
            continue  # a mod-16 solver would get it right: not intractable for the student
        return {"prompt": prompt, "answer": answer, "solution": solution, "tier": spec.tier,
                "length": length, "modulus": spec.modulus}


def unique_chains(rng: random.Random, spec: TierSpec, n: int, pad_to: int, taken: set[str],
                  prefix: str) -> list[dict[str, Any]]:
    """``n`` problems whose prompts are not in ``taken`` (``taken`` is updated); ids ``prefix-00001``."""
    rows: list[dict[str, Any]] = []
    tries = 0
    while len(rows) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise ValueError(f"could not draw {n} distinct {spec.tier} problems (got {len(rows)}); "
                             "raise max_len or lower the set sizes")
        row = sample_chain(rng, spec, pad_to)
        if row["prompt"] in taken:
            continue
        taken.add(row["prompt"])
        rows.append({"id": f"{prefix}-{len(rows):05d}", **row})
    return rows


def stream_chains(rng: random.Random, spec: TierSpec, pad_to: int,
                  exclude: set[str]) -> Iterator[tuple[str, str]]:
    """An endless stream of (prompt, completion) training pairs, skipping held-out prompts."""
    while True:
        row = sample_chain(rng, spec, pad_to)
        if row["prompt"] not in exclude:
            yield row["prompt"], row["solution"]


def make_facts(rng: random.Random, n: int, n_choices: int = 4) -> list[dict[str, Any]]:
    """``n`` random facts ``!xyz=`` -> letter, each with ``n_choices`` shuffled letter choices."""
    keys: set[str] = set()
    rows = []
    while len(rows) < n:
        key = "".join(rng.choice(LETTERS) for _ in range(3))
        if key in keys:
            continue
        keys.add(key)
        answer = rng.choice(LETTERS)
        choices = [answer, *rng.sample([c for c in LETTERS if c != answer], n_choices - 1)]
        rng.shuffle(choices)
        rows.append({"id": f"F-{len(rows):05d}", "prompt": f"!{key}=", "answer": answer,
                     "choices": choices, "solution": answer, "tier": "probe"})
    return rows
