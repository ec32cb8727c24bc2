"""argparse types that refuse, by name and before any work starts, the values a command cannot
use: a count of 0 steps, a negative batch, a seed outside int64 (issue 35). No TensorFlow."""

import argparse
import math

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _number(kind, text):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a{'n' if kind is int else ''} "
                                         f"{'integer' if kind is int else 'number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def at_least(minimum, kind=int):
    """A number of `kind` that is `minimum` or more."""
    def parse(text):
        value = _number(kind, text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {text}")
        return value
    parse.__name__ = f"{kind.__name__} >= {minimum}"
    return parse


def positive(kind=int):
    """A number of `kind` above 0 (a poll interval of 0 spun a core while idle, a batch limit
    of -1 failed every warm-up)."""
    def parse(text):
        value = _number(kind, text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
        return value
    parse.__name__ = f"positive {kind.__name__}"
    return parse


def int64(text):
    """An integer that fits a TensorFlow int64 (a seed)."""
    value = _number(int, text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise argparse.ArgumentTypeError(f"must fit in int64 ({INT64_MIN} .. {INT64_MAX}), "
                                         f"got {text}")
    return value
