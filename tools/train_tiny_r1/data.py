# SPDX-License-Identifier: MIT
"""Arithmetic problems answered R1-style: digit-by-digit reasoning inside <think>…</think>, then the answer.

Problems: a+b and a-b with a, b < 10000; a*b with a < 1000 and b < 100. Every problem (op, a, b) belongs to
exactly one split, decided by a hash of the problem, so the held-out test set is never seen in training
whatever the sampling seed.
"""
import hashlib
import random

PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands"]

# (template, op): {a} and {b} are the operands. The first of each op is the plain phrasing.
PHRASINGS = {
    "+": ["What is {a}+{b}?", "What is {a} + {b}?", "What is {a} plus {b}?", "Calculate {a}+{b}.",
          "Add {a} and {b}.", "{a}+{b}=?", "How much is {a} plus {b}?", "Compute {a} + {b}."],
    "-": ["What is {a}-{b}?", "What is {a} - {b}?", "What is {a} minus {b}?", "Calculate {a}-{b}.",
          "Subtract {b} from {a}.", "{a}-{b}=?", "How much is {a} minus {b}?", "Compute {a} - {b}."],
    "*": ["What is {a}*{b}?", "What is {a} * {b}?", "What is {a} times {b}?", "Calculate {a}*{b}.",
          "Multiply {a} by {b}.", "{a}*{b}=?", "What is {a} multiplied by {b}?", "Compute {a} x {b}."],
}


def is_test_problem(op, a, b):
    """One problem in 20 is held out (by hash, independent of any seed)."""
    h = hashlib.blake2b(f"{op}{a},{b}".encode(), digest_size=4).digest()
    return int.from_bytes(h, "little") % 20 == 0


def digits_rev(n):
    return [int(c) for c in reversed(str(n))]


def add_steps(a, b):
    """Lines adding a+b (a, b >= 0) digit by digit; returns (lines, result)."""
    da, db = digits_rev(a), digits_rev(b)
    n = max(len(da), len(db))
    lines, carry, out = [], 0, []
    for i in range(n):
        x = da[i] if i < len(da) else 0
        y = db[i] if i < len(db) else 0
        s = x + y + carry
        lines.append(f"{PLACES[i]} {x}+{y}+{carry}={s} write {s % 10} carry {s // 10}")
        out.append(s % 10)
        carry = s // 10
    if carry:
        lines.append(f"{PLACES[n]} write {carry}")
    return lines, a + b


def sub_steps(a, b):
    """Lines for a-b with a >= b >= 0; returns (lines, result)."""
    da, db = digits_rev(a), digits_rev(b)
    lines, borrow = [], 0
    for i in range(len(da)):
        x = da[i]
        y = db[i] if i < len(db) else 0
        d = x - y - borrow
        if d < 0:
            lines.append(f"{PLACES[i]} {x + 10}-{y}-{borrow}={d + 10} write {d + 10} borrow 1")
            borrow = 1
        else:
            lines.append(f"{PLACES[i]} {x}-{y}-{borrow}={d} write {d} borrow 0")
            borrow = 0
    return lines, a - b


def mul_digit_steps(a, d):
    """Lines for a*d with a single digit d; returns (lines, product)."""
    lines, carry = [], 0
    da = digits_rev(a)
    for i, x in enumerate(da):
        p = x * d + carry
        if i == len(da) - 1:
            lines.append(f"{x}*{d}+{carry}={p} write {p}")
        else:
            lines.append(f"{x}*{d}+{carry}={p} write {p % 10} carry {p // 10}")
            carry = p // 10
    return lines, a * d


def reasoning(op, a, b):
    """The text inside <think>…</think> (without the tags) and the result."""
    if op == "+":
        lines, r = add_steps(a, b)
        lines = [f"Add {a} and {b} digit by digit, from the ones."] + lines + [f"So {a}+{b}={r}."]
    elif op == "-":
        if a >= b:
            lines, r = sub_steps(a, b)
            lines = [f"Subtract {b} from {a} digit by digit, from the ones."] + lines + [f"So {a}-{b}={r}."]
        else:
            body, r0 = sub_steps(b, a)
            r = -r0
            lines = ([f"{a} is less than {b}, so compute {b}-{a} and make it negative."] + body +
                     [f"{b}-{a}={r0}, so {a}-{b}={r}."])
    else:
        db = digits_rev(b)
        lines = [f"Multiply {a} by each digit of {b}."]
        partials = []
        for i, d in enumerate(db):
            steps, p = mul_digit_steps(a, d)
            shifted = p * 10 ** i
            tail = f" Shift by {i}: {shifted}." if i else ""
            lines.append(f"{a}*{d}:\n" + "\n".join(steps) + f"\nSo {a}*{d}={p}.{tail}")
            partials.append(shifted)
        r = a * b
        if len(partials) == 2:
            steps, s = add_steps(partials[0], partials[1])
            lines += [f"Add {partials[0]} and {partials[1]}."] + steps
        lines.append(f"So {a}*{b}={r}.")
    return "\n".join(lines), r


def sample_operands(rng, op):
    def num(max_digits):
        nd = rng.randint(1, max_digits)  # uniform number of digits, then uniform value
        return rng.randint(0 if nd == 1 else 10 ** (nd - 1), 10 ** nd - 1)
    if op == "*":
        return num(3), num(2)
    return num(4), num(4)


def make_example(rng, split="train"):
    """Returns dict(question, reasoning, answer, op, a, b) from the given split."""
    while True:
        op = rng.choice("+-*")
        a, b = sample_operands(rng, op)
        if is_test_problem(op, a, b) == (split == "test"):
            break
    q = rng.choice(PHRASINGS[op]).format(a=a, b=b)
    think, r = reasoning(op, a, b)
    return {"question": q, "reasoning": think, "answer": f"{a}{op}{b} = {r}", "result": r, "op": op, "a": a, "b": b}


def test_set(n=1000, seed=1234):
    """The held-out problems (plain phrasing for the first third, others drawn from all phrasings)."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        ex = make_example(rng, "test")
        key = (ex["op"], ex["a"], ex["b"])
        if key in seen:
            continue
        seen.add(key)
        if len(out) < n // 3:
            ex["question"] = PHRASINGS[ex["op"]][0].format(a=ex["a"], b=ex["b"])
        out.append(ex)
    return out


def assistant_text(ex):
    """What the model writes after the generation prompt '<｜Assistant｜><think>\\n' (R1 template)."""
    return ex["reasoning"] + "\n</think>\n\n" + ex["answer"]


if __name__ == "__main__":
    rng = random.Random(0)
    for _ in range(3):
        ex = make_example(rng)
        print(ex["question"])
        print(assistant_text(ex))
        print("---")
