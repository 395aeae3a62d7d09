#!/usr/bin/python3
"""Cross-check the generated codec against an independent implementation: kafka-python's
hand-written protocol classes (Debian python3-kafka). For every request/response class
it knows (classic, non-flexible versions), build a value with distinct field values,
encode it with kafka-python, and have decode_check decode and re-encode it with our
codec; every byte must match.

  kafka_python_crosscheck.py PATH/TO/decode_check
Exit 77 (meson: skipped) when kafka-python is not installed.
"""
import importlib
import inspect
import subprocess
import sys

try:
    from kafka.protocol import api, types
except ImportError:
    sys.exit(77)

MODULES = ["admin", "commit", "fetch", "group", "metadata", "offset", "produce"]
# Keys our codec covers; kafka-python also has ACL APIs (29-31) we do not.
OUR_KEYS = {0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            32, 33, 36, 37, 42, 44, 47, 60}


# Frames kafka-python 2.0.2 gets wrong (checked against Kafka's JSON schemas); a
# mismatch here is expected and is not a codec failure.
KAFKA_PYTHON_BUGS = {
    (0, "resp", 8): "record_errors/error_message nested at the topic level, not per partition",
    (2, "req", 4): "current_leader_epoch encoded as int64 (Kafka: int32)",
    (2, "req", 5): "current_leader_epoch encoded as int64 (Kafka: int32)",
    (10, "resp", 1): "throttle_time_ms missing",
    (15, "resp", 3): "authorized_operations missing from each group",
}


class Unsupported(Exception):
    pass


def fix_schema(t):
    """Some kafka-python schemas use the String class where they mean String('utf-8')."""
    if isinstance(t, types.Schema):
        t.fields = tuple(types.String("utf-8") if f is types.String else fix_schema(f) for f in t.fields)
    elif isinstance(t, types.Array):
        t.array_of = types.String("utf-8") if t.array_of is types.String else fix_schema(t.array_of)
    return t


def sample(t, counter, depth=0):
    """A value for kafka-python type t; counter makes every field value distinct."""
    counter[0] += 1
    n = counter[0]
    cls = t if inspect.isclass(t) else type(t)
    if cls is types.Int8:
        return n % 100
    if cls is types.Int16:
        return 1000 + n
    if cls is types.Int32:
        return 100000 + n
    if cls is types.Int64:
        return 10000000000 + n
    if cls is types.Boolean:
        return True
    if cls is types.String:
        return f"s{n}"
    if cls is types.Bytes:
        return bytes([n % 256, 1, 2, 3])
    if cls is types.Schema:
        return tuple(sample(f, counter, depth + 1) for f in t.fields)
    if cls is types.Array:
        return [sample(t.array_of, counter, depth + 1) for _ in range(2)]
    raise Unsupported(cls.__name__)


def classes():
    for m in MODULES:
        mod = importlib.import_module("kafka.protocol." + m)
        for _, c in inspect.getmembers(mod, inspect.isclass):
            key = getattr(c, "API_KEY", None)
            version = getattr(c, "API_VERSION", None)
            if not (isinstance(key, int) and isinstance(version, int)) or key not in OUR_KEYS:
                continue
            if issubclass(c, api.Request):
                yield key, "req", version, c
            elif issubclass(c, api.Response):
                yield key, "resp", version, c


def main():
    lines, skipped = [], []
    for key, kind, version, c in sorted(set(classes()), key=lambda x: (x[0], x[1], x[2])):
        if (key, kind, version) in KAFKA_PYTHON_BUGS:
            skipped.append(f"{c.__name__} (kafka-python bug: {KAFKA_PYTHON_BUGS[key, kind, version]})")
            continue
        try:
            fix_schema(c.SCHEMA)
            value = sample(c.SCHEMA, [0])
            body = c.SCHEMA.encode(value)
        except (Unsupported, TypeError, ValueError) as e:
            skipped.append(f"{c.__name__} ({e})")
            continue
        lines.append(f"{key} {kind} {version} {body.hex()}")
    print(f"{len(lines)} frames from kafka-python; skipped:")
    for s in skipped:
        print("  " + s)
    res = subprocess.run([sys.argv[1]], input="\n".join(lines) + "\n", text=True, capture_output=True)
    print(res.stdout, end="")
    sys.exit(res.returncode)


if __name__ == "__main__":
    main()
