"""A strict parser for the Prometheus text exposition format 0.0.4, for exact assertions.

parse() returns {(name, frozenset(labels.items())): value}; sample names keep their
suffixes (_bucket, _sum, _count). A line it cannot read raises ValueError, so a
malformed exposition fails the test that scraped it.
"""

import math
import re

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class Exposition:
    """samples, plus the # TYPE and # HELP of each family."""

    def __init__(self):
        self.samples = {}
        self.types = {}
        self.helps = {}


def parse_full(text):
    out = Exposition()
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] == "TYPE":
                    out.types[parts[2]] = parts[3] if len(parts) > 3 else ""
                elif len(parts) >= 3 and parts[1] == "HELP":
                    out.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
                continue
            name, labels, value = _parse_sample(line)
        except (ValueError, IndexError) as e:
            raise ValueError(f"metrics line {lineno}: {e}: {line!r}") from None
        key = (name, frozenset(labels.items()))
        if key in out.samples:
            raise ValueError(f"metrics line {lineno}: duplicate sample {line!r}")
        out.samples[key] = value
    return out


def parse(text):
    """{(name, frozenset(labels.items())): float}"""
    return parse_full(text).samples


def _parse_sample(line):
    m = _NAME.match(line)
    if not m:
        raise ValueError("no metric name")
    name, i = m.group(0), m.end()
    labels = {}
    if i < len(line) and line[i] == "{":
        i += 1
        while True:
            if line[i] == "}":
                i += 1
                break
            lm = _LABEL.match(line, i)
            if not lm or line[lm.end():lm.end() + 2] != '="':
                raise ValueError("bad label")
            key, i = lm.group(0), lm.end() + 2
            val = []
            while line[i] != '"':
                if line[i] == "\\":
                    if line[i + 1] not in _ESCAPES:
                        raise ValueError("bad escape")
                    val.append(_ESCAPES[line[i + 1]])
                    i += 2
                else:
                    val.append(line[i])
                    i += 1
            i += 1
            if key in labels:
                raise ValueError(f"label {key} twice")
            labels[key] = "".join(val)
            if line[i] == ",":
                i += 1
            elif line[i] != "}":
                raise ValueError("expected , or }")
    rest = line[i:].split()
    if line[i:i + 1] not in (" ", "\t") or not 1 <= len(rest) <= 2:
        raise ValueError("expected value [timestamp]")
    return name, labels, _parse_value(rest[0])


def _parse_value(text):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    return float(text)


def value(samples, name, **labels):
    """The sample with exactly these labels, or None if absent."""
    return samples.get((name, frozenset(labels.items())))


def value_or_zero(samples, name, **labels):
    """Like value(), 0 when absent: a counter that never moved may not be exported."""
    v = value(samples, name, **labels)
    return 0.0 if v is None else v


def select(samples, name, **labels):
    """{frozenset(all labels): value} for samples of `name` whose labels include these."""
    want = set(labels.items())
    return {lbls: v for (n, lbls), v in samples.items() if n == name and want <= lbls}


def sum_values(samples, name, **labels):
    """Sum over every sample of `name` whose labels include these (0 when none)."""
    return sum(select(samples, name, **labels).values())


def nonzero(samples, name, **labels):
    """{frozenset(labels): value} of the matching samples that are not 0."""
    return {k: v for k, v in select(samples, name, **labels).items() if v != 0}
