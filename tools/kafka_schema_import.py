#!/usr/bin/env python3
"""Turn Kafka's message JSON (clients/.../common/message/*.json) into Sluice's compact
schema facts under broker/protocol/schema/.

Run once by hand when the protocol snapshot changes; the output is committed and the
build reads only the facts (tools/kafka_codegen.py), never Kafka's files.

Facts format (one JSON file per API, or per internal record):
  {"api_key": 1, "name": "fetch", "versions": [0, 17], "flexible": 12 | null,
   "request": STRUCT, "response": STRUCT}
  internal records: {"name": ..., "versions": [lo, hi], "flexible": ..., "record": STRUCT}
  STRUCT = {"fields": [FIELD...], "common": [{"name": s, "fields": [...]}...]}
  FIELD  = {"name": snake_case, "type": "int32"|"string"|...|"[]int32"|"struct"|"[]struct",
            "struct": snake_case struct name (struct types only), "fields": [...] (inline structs),
            "versions": [lo, hi], "nullable": [lo, hi]?, "tagged": [lo, hi]?, "tag": n?,
            "default": string?}
Version ranges are closed and clamped to the message's valid versions.
"""
import json
import pathlib
import re
import sys

APIS = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit",
    9: "OffsetFetch", 10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat",
    13: "LeaveGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
    17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics", 20: "DeleteTopics",
    21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    32: "DescribeConfigs", 33: "AlterConfigs", 36: "SaslAuthenticate",
    37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 60: "DescribeCluster",
}
INTERNAL = ["OffsetCommitKey", "OffsetCommitValue", "GroupMetadataKey", "GroupMetadataValue"]
PRIMITIVES = {"int8", "int16", "int32", "int64", "uint16", "uint32", "float64", "bool",
              "string", "bytes", "uuid", "records"}


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


def load(path):
    text = "\n".join(l for l in path.read_text().splitlines() if not l.strip().startswith("//"))
    return json.loads(text)


def parse_range(spec, lo_valid, hi_valid):
    if spec is None or spec == "none":
        return None
    spec = str(spec)
    if spec.endswith("+"):
        lo, hi = int(spec[:-1]), hi_valid
    elif "-" in spec:
        lo, hi = (int(x) for x in spec.split("-"))
    else:
        lo = hi = int(spec)
    lo, hi = max(lo, lo_valid), min(hi, hi_valid)
    return [lo, hi] if lo <= hi else None


def convert_field(f, valid):
    lo, hi = valid
    ftype = f["type"]
    base = ftype[2:] if ftype.startswith("[]") else ftype
    out = {"name": snake(f["name"])}
    if base in PRIMITIVES:
        out["type"] = ftype
    else:
        out["type"] = "[]struct" if ftype.startswith("[]") else "struct"
        out["struct"] = snake(base)
    versions = parse_range(f.get("versions"), lo, hi)
    if versions is None:
        return None  # the field exists only outside the versions we keep
    out["versions"] = versions
    for key in ("nullableVersions", "taggedVersions"):
        r = parse_range(f.get(key), lo, hi)
        if r is not None:
            out["nullable" if key == "nullableVersions" else "tagged"] = r
    if "tag" in f:
        out["tag"] = f["tag"]
    if "default" in f:
        out["default"] = str(f["default"]).lower() if isinstance(f["default"], bool) else str(f["default"])
    if "fields" in f:
        out["fields"] = [c for c in (convert_field(x, valid) for x in f["fields"]) if c]
    return out


def convert_struct(msg, valid):
    out = {"fields": [c for c in (convert_field(f, valid) for f in msg["fields"]) if c]}
    common = [{"name": snake(c["name"]),
               "fields": [x for x in (convert_field(f, valid) for f in c["fields"]) if x]}
              for c in msg.get("commonStructs", [])]
    if common:
        out["common"] = common
    return out


def main():
    src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/kafka-protocol")
    dst = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else
                       pathlib.Path(__file__).resolve().parent.parent / "broker/protocol/schema")
    dst.mkdir(parents=True, exist_ok=True)
    for key, name in APIS.items():
        req = load(src / "messages" / f"{name}Request.json")
        resp = load(src / "messages" / f"{name}Response.json")
        assert req["apiKey"] == key == resp["apiKey"], name
        valid = parse_range(req["validVersions"], 0, 1 << 15)
        rvalid = parse_range(resp["validVersions"], 0, 1 << 15)
        assert valid == rvalid, (name, valid, rvalid)
        flex = parse_range(req["flexibleVersions"], 0, valid[1])
        facts = {"api_key": key, "name": snake(name), "versions": valid,
                 "flexible": flex[0] if flex else None,
                 "request": convert_struct(req, valid), "response": convert_struct(resp, valid)}
        write(dst / f"{snake(name)}.json", facts)
    for name in INTERNAL:
        msg = load(src / "internal-topics" / f"{name}.json")
        valid = parse_range(msg["validVersions"], 0, 1 << 15)
        flex = parse_range(msg.get("flexibleVersions"), 0, valid[1])
        facts = {"name": snake(name), "versions": valid, "flexible": flex[0] if flex else None,
                 "record": convert_struct(msg, valid)}
        write(dst / f"internal_{snake(name)}.json", facts)


def write(path, facts):
    # One field per line keeps the facts compact and diffs between snapshots readable.
    lines = ["{"]
    head = {k: v for k, v in facts.items() if not isinstance(v, dict)}
    lines.append(" " + json.dumps(head)[1:-1] + ",")
    structs = [(k, v) for k, v in facts.items() if isinstance(v, dict)]
    for i, (key, struct) in enumerate(structs):
        lines.append(f' "{key}": {{"fields": [')
        lines += fields_lines(struct["fields"], 2)
        if "common" in struct:
            lines.append('  ], "common": [')
            for j, c in enumerate(struct["common"]):
                lines.append(f'   {{"name": "{c["name"]}", "fields": [')
                lines += fields_lines(c["fields"], 4)
                lines.append("   ]}" + ("," if j + 1 < len(struct["common"]) else ""))
        lines.append("  ]}" + ("," if i + 1 < len(structs) else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == facts, path
    path.write_text(text)


def fields_lines(fields, indent):
    out = []
    for i, f in enumerate(fields):
        comma = "," if i + 1 < len(fields) else ""
        flat = {k: v for k, v in f.items() if k != "fields"}
        if "fields" not in f:
            out.append(" " * indent + json.dumps(flat) + comma)
            continue
        out.append(" " * indent + json.dumps(flat)[:-1] + ', "fields": [')
        out += fields_lines(f["fields"], indent + 1)
        out.append(" " * indent + "]}" + comma)
    return out


if __name__ == "__main__":
    main()
