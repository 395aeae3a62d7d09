#!/usr/bin/env python3
"""Generate Sluice's Kafka message codec from the schema facts in broker/protocol/schema.

  kafka_codegen.py OUT_DIR FACTS.json...

writes OUT_DIR/messages.h, messages.cc (the codec, namespace sluice::proto) and
samples.h, samples.cc (fill_sample(): non-default values per version, for tests).

Per message a struct with snake_case fields, nested struct types scoped in the message
struct, `bool decode(reader&, int16_t version)` and `void encode(writer&, int16_t) const`.
Run by meson at build time; the facts come from tools/kafka_schema_import.py.
"""
import json
import pathlib
import sys

INT_TYPES = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
             "uint16": "uint16_t", "uint32": "uint32_t"}
SCALARS = dict(INT_TYPES, float64="double", bool="bool", uuid="proto::uuid")
SCALAR_SIZE = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint16": 2, "uint32": 4,
               "float64": 8, "bool": 1, "uuid": 16}
RESERVED = {"api_key", "min_version", "max_version", "flexible_version", "decode", "encode"}
CPP_KEYWORDS = {"default", "delete", "new", "class", "operator", "template", "this", "union",
                "register", "private", "public", "protected", "namespace", "throw", "try"}


class Message:
    """One generated top-level struct and the nested struct types it owns."""

    def __init__(self, cpp_name, facts, struct, api_key=None, is_request=None):
        self.name = cpp_name
        self.lo, self.hi = facts["versions"]
        self.flexible = facts["flexible"]
        self.api_key = api_key
        self.is_request = is_request
        self.fields = struct["fields"]
        self.nested = []  # (type name, fields), dependencies first
        self.renames = {}
        all_fields = set()
        self._collect_names(struct["fields"], all_fields)
        for c in struct.get("common", []):
            self._collect_names(c["fields"], all_fields)
        for c in struct.get("common", []):
            self._collect_structs(c["fields"])
            self.nested.append((c["name"], c["fields"]))
        self._collect_structs(struct["fields"])
        names = [n for n, _ in self.nested]
        assert len(names) == len(set(names)), f"{cpp_name}: duplicate struct names {names}"
        for n in names:
            self.renames[n] = n + "_data" if n in all_fields or n in RESERVED else n
        assert not (RESERVED & {f["name"] for f in self.fields}), cpp_name

    def _collect_names(self, fields, out):
        for f in fields:
            out.add(f["name"])
            self._collect_names(f.get("fields", []), out)

    def _collect_structs(self, fields):
        for f in fields:
            if "fields" in f and f["type"] in ("struct", "[]struct"):
                self._collect_structs(f["fields"])
                self.nested.append((f["struct"], f["fields"]))

    def struct_type(self, name):
        return f"{self.name}::{self.renames[name]}"

    # ---- version predicates, as C++ conditions ("" means always true) ----
    def cond(self, rng):
        if rng is None:
            return "false"
        lo, hi = rng
        parts = []
        if lo > self.lo:
            parts.append(f"version >= {lo}")
        if hi < self.hi:
            parts.append(f"version <= {hi}")
        return " && ".join(parts)

    def tagged_cond(self, f):
        return self.cond(f.get("tagged")) if "tagged" in f else "false"

    def untagged_range_cond(self, f):
        present = self.cond(f["versions"])
        if "tagged" not in f:
            return present
        tagged = self.cond(f["tagged"])
        if tagged == "" or tagged == present:
            return "false"
        return join_and(present, f"!({tagged})")

    def nullable_cond(self, f):
        if "nullable" not in f:
            return "false"
        c = self.cond(f["nullable"])
        if c == "" or c == self.cond(f["versions"]):
            return "true"
        return f"({c})"


def join_and(*conds):
    conds = [c for c in conds if c]
    if "false" in conds:
        return "false"
    return " && ".join(f"({c})" if "||" in c else c for c in conds)


def member(f):
    n = f["name"]
    return n + "_" if n in CPP_KEYWORDS else n


def elem_type(f):
    t = f["type"]
    return t[2:] if t.startswith("[]") else t


def cpp_type(m, f):
    t = f["type"]
    nullable = "nullable" in f
    if t == "struct":
        return m.struct_type(f["struct"])
    if t in SCALARS:
        return SCALARS[t]
    if t == "records":
        return "proto::records"
    if t in ("string", "bytes"):
        base = "std::string" if t == "string" else "std::vector<uint8_t>"
        return f"std::optional<{base}>" if nullable else base
    e = elem_type(f)
    inner = m.struct_type(f["struct"]) if e == "struct" else ("std::string" if e == "string" else SCALARS[e])
    vec = f"std::vector<{inner}>"
    return f"std::optional<{vec}>" if nullable else vec


def default_expr(m, f):
    """Initializer for the member (without braces), '' for value-initialisation."""
    t = f["type"]
    d = f.get("default")
    if t in INT_TYPES:
        if d is None:
            return ""
        v = int(d, 0)
        if t == "int32" and v == -2**31:
            return "INT32_MIN"
        return f"{v}LL" if t == "int64" and abs(v) > 2**31 else str(v)
    if t == "bool":
        return "true" if d == "true" else ""
    if t == "float64":
        return d if d not in (None, "0") else ""
    if t in ("string", "bytes") or t.startswith("[]"):
        if "nullable" not in f:
            return f'"{d}"' if t == "string" and d else ""
        if d == "null":
            return ""  # nullopt
        if t == "string":
            return f'std::string{{"{d or ""}"}}'
        return cpp_type(m, f)[len("std::optional<"):-1] + "{}"
    return ""


# ---------------------------------------------------------------- header emission

def emit_struct_decl(m, name, fields, indent, top=False):
    pad = " " * indent
    lines = [f"{pad}struct {name} {{"]
    if top:
        lines.append(f"{pad}    static constexpr int16_t min_version = {m.lo};")
        lines.append(f"{pad}    static constexpr int16_t max_version = {m.hi};")
        flex = m.flexible if m.flexible is not None else -1
        lines.append(f"{pad}    // First flexible version (compact encodings, tagged fields); -1: none.")
        lines.append(f"{pad}    static constexpr int16_t flexible_version = {flex};")
        if m.api_key is not None:
            lines.append(f"{pad}    static constexpr int16_t api_key = {m.api_key};")
        lines.append("")
        for sname, sfields in m.nested:
            lines += emit_struct_decl(m, m.renames[sname], sfields, indent + 4)
            lines.append("")
    for f in fields:
        d = default_expr(m, f)
        lines.append(f"{pad}    {cpp_type(m, f)} {member(f)}{{{d}}};  // {describe(f)}")
    if fields:
        lines.append("")
    lines.append(f"{pad}    bool decode(reader& r, int16_t version);")
    lines.append(f"{pad}    void encode(writer& w, int16_t version) const;")
    lines.append(f"{pad}    bool operator==(const {name}&) const = default;")
    lines.append(f"{pad}}};")
    return lines


def describe(f):
    def rng(r):
        return f"v{r[0]}-{r[1]}" if r[0] != r[1] else f"v{r[0]}"
    s = rng(f["versions"])
    if "nullable" in f:
        s += f", null {rng(f['nullable'])}"
    if "tagged" in f:
        s += f", tag {f['tag']} {rng(f['tagged'])}"
    return s


# ---------------------------------------------------------------- codec emission

def read_scalar(f, target, t):
    if t in SCALARS:
        return f"{target} = r.read_{t}();"
    raise AssertionError(t)


def decode_value(m, f, target, nullable):
    t = f["type"]
    if t == "struct":
        return [f"{target}.decode(r, version);"]
    if t in SCALARS:
        return [read_scalar(f, target, t)]
    if t == "records":
        return [f"r.read_records({target}, flex, {nullable});"]
    if t in ("string", "bytes"):
        extra = f", {nullable}" if "nullable" in f else ""
        return [f"r.read_{t}({target}, flex{extra});"]
    e = elem_type(f)
    size = SCALAR_SIZE.get(e, 1)
    out = [f"if (int32_t n = r.read_array_length(flex, {nullable}, {size}); n >= 0) {{"]
    vec = target
    if "nullable" in f:
        out.append(f"    {target}.emplace();")
        vec = f"(*{target})"
    if e not in ("struct", "string"):
        # Fixed-size elements: the count was checked against the remaining bytes.
        out.append(f"    {vec}.resize(static_cast<size_t>(n));")
        out.append(f"    for (auto& e : {vec}) e = r.read_{e}();")
    else:
        # Grow as elements decode, so memory follows the bytes actually present.
        out.append(f"    {vec}.reserve(std::min<size_t>(static_cast<size_t>(n), 64));")
        out.append(f"    for (int32_t i = 0; i < n && r.ok(); ++i) {{")
        if e == "struct":
            out.append(f"        {vec}.emplace_back().decode(r, version);")
        else:
            out.append(f"        r.read_string({vec}.emplace_back(), flex);")
        out.append("    }")
    if "nullable" in f:
        out.append("} else {")
        out.append(f"    {target}.reset();")
    out.append("}")
    return out


def encode_value(m, f, src, nullable, w="w"):
    t = f["type"]
    if t == "struct":
        return [f"{src}.encode({w}, version);"]
    if t in SCALARS:
        return [f"{w}.write_{t}({src});"]
    if t == "records":
        return [f"{w}.write_records({src}, flex, {nullable});"]
    if t in ("string", "bytes"):
        extra = f", {nullable}" if "nullable" in f else ""
        return [f"{w}.write_{t}({src}, flex{extra});"]
    e = elem_type(f)
    if e == "struct":
        each = f"e.encode({w}, version);"
    elif e == "string":
        each = f"{w}.write_string(e, flex);"
    else:
        each = f"{w}.write_{e}(e);"
    if "nullable" in f:
        return [f"if (!{src}) {{",
                f"    {w}.write_array_length({nullable} ? -1 : 0, flex);",
                "} else {",
                f"    {w}.write_array_length(static_cast<int64_t>({src}->size()), flex);",
                f"    for (const auto& e : *{src}) {each}",
                "}"]
    return [f"{w}.write_array_length(static_cast<int64_t>({src}.size()), flex);",
            f"for (const auto& e : {src}) {each}"]


def guarded(cond, body, indent=4):
    pad = " " * indent
    if cond == "false":
        return []
    if cond == "":
        return [pad + b for b in body]
    if len(body) == 1:
        return [f"{pad}if ({cond}) {body[0]}"]
    return [f"{pad}if ({cond}) {{"] + [pad + "    " + b for b in body] + [f"{pad}}}"]


def tagged_fields(fields):
    return sorted((f for f in fields if "tagged" in f), key=lambda f: f["tag"])


def flex_line(m):
    if m.flexible is None:
        return ["    [[maybe_unused]] const bool flex = false;", "    (void)version;"]
    return [f"    [[maybe_unused]] const bool flex = version >= {m.flexible};"]


def emit_decode(m, qname, fields):
    out = [f"bool {qname}::decode(reader& r, int16_t version) {{", "    *this = {};"]
    out += flex_line(m)
    for f in fields:
        cond = m.untagged_range_cond(f)
        out += guarded(cond, decode_value(m, f, member(f), m.nullable_cond(f)))
    if m.flexible is not None:
        tagged = tagged_fields(fields)
        if not tagged:
            out.append("    if (flex) r.read_tagged_fields([](uint32_t) { return false; });")
        else:
            out.append("    if (flex) r.read_tagged_fields([&](uint32_t tag) {")
            out.append("        switch (tag) {")
            for f in tagged:
                cond = m.tagged_cond(f)
                out.append(f"        case {f['tag']}:")
                if cond:
                    out.append(f"            if (!({cond})) return false;")
                out += ["            " + b for b in decode_value(m, f, member(f), m.nullable_cond(f))]
                out.append("            return true;")
            out.append("        default:")
            out.append("            return false;")
            out.append("        }")
            out.append("    });")
    out.append("    return r.ok();")
    out.append("}")
    return out


def emit_encode(m, qname, fields):
    out = [f"void {qname}::encode(writer& w, int16_t version) const {{"]
    out += flex_line(m)
    for f in fields:
        cond = m.untagged_range_cond(f)
        out += guarded(cond, encode_value(m, f, member(f), m.nullable_cond(f)))
    if m.flexible is not None:
        tagged = tagged_fields(fields)
        if not tagged:
            out.append("    if (flex) w.write_uvarint(0);")
        else:
            # A tagged field is sent only when it differs from its default.
            out.append("    if (flex) {")
            for f in tagged:
                c = join_and(m.tagged_cond(f), f"{member(f)} != {cpp_type(m, f)}{{{default_expr(m, f)}}}")
                out.append(f"        const bool has_{f['tag']} = {c};")
            count = " + ".join(f"int(has_{f['tag']})" for f in tagged)
            out.append(f"        w.write_uvarint(static_cast<uint32_t>({count}));")
            for f in tagged:
                body = encode_value(m, f, member(f), m.nullable_cond(f), w="tw")
                out.append(f"        if (has_{f['tag']}) w.write_tagged({f['tag']}, [&](writer& tw) {{")
                out += ["            " + b for b in body]
                out.append("        });")
            out.append("    }")
    out.append("}")
    return out


# ---------------------------------------------------------------- samples (tests)

def sample_value(m, f, target, idx):
    """Statements that put a non-default value valid for `version` into target."""
    t = f["type"]
    nullable = m.nullable_cond(f)
    if t == "struct":
        return [f"fill_sample({target}, version, seed);"]
    if t in INT_TYPES:
        return [f"{target} = static_cast<{INT_TYPES[t]}>((seed * 3 + {idx}) % 100 + 2);"]
    if t == "bool":
        return [f"{target} = {'false' if default_expr(m, f) == 'true' else 'true'};"]
    if t == "float64":
        return [f"{target} = seed + 0.25;"]
    if t == "uuid":
        return [f"for (size_t i = 0; i < {target}.size(); ++i) {target}[i] = static_cast<uint8_t>(seed + {idx} + i);"]
    null_first = [] if nullable == "false" else [f"if (({nullable}) && seed % 2 == 0) {{ {target} = {{}}; }} else"]
    if t == "records":
        return null_first + [f"{target} = proto::records::of(sample_records(seed));"]
    if t == "string":
        return null_first + [f'{target} = "s{idx}-" + std::to_string(seed);']
    if t == "bytes":
        return null_first + [f"{target} = std::vector<uint8_t>{{uint8_t(seed), {idx % 256}, 0xff}};"]
    e = elem_type(f)
    vec_t = cpp_type(m, f)
    if "nullable" in f:
        vec_t = vec_t[len("std::optional<"):-1]
    body = [f"{vec_t} v(2);"]
    if e == "struct":
        body.append("for (auto& e : v) fill_sample(e, version, seed);")
    elif e == "string":
        body.append(f'for (size_t i = 0; i < v.size(); ++i) v[i] = "e{idx}-" + std::to_string(i);')
    else:
        body.append(f"for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<{SCALARS[e]}>(seed + i + {idx});")
    body.append(f"{target} = std::move(v);")
    return null_first + ["{"] + ["    " + b for b in body] + ["}"]


def emit_sample(m, qname, fields):
    out = [f"void fill_sample({qname}& m, int16_t version, int seed) {{", "    (void)version;", "    (void)seed;"]
    for i, f in enumerate(fields):
        out += guarded(m.cond(f["versions"]), sample_value(m, f, "m." + member(f), i + 2))
    out.append("}")
    return out


# ---------------------------------------------------------------- files

def load_messages(paths):
    apis, records = [], []
    for p in sorted(paths):
        facts = json.loads(pathlib.Path(p).read_text())
        if "api_key" in facts:
            req = Message(facts["name"] + "_request", facts, facts["request"], facts["api_key"], True)
            resp = Message(facts["name"] + "_response", facts, facts["response"], facts["api_key"], False)
            apis.append((facts, req, resp))
        else:
            records.append(Message(facts["name"], facts, facts["record"]))
    apis.sort(key=lambda a: a[0]["api_key"])
    return apis, records


def all_structs(m):
    for sname, sfields in m.nested:
        yield m.struct_type(sname), sfields
    yield m.name, m.fields


HEADER_PRELUDE = """#pragma once
// GENERATED by tools/kafka_codegen.py from broker/protocol/schema/*.json -- do not edit.
//
// One struct per Kafka message. decode() reads one version of the message from a
// reader (sticky errors: check the return value or r.ok()); encode() appends it to a
// writer. Fields absent in a version keep their defaults. Tagged fields are decoded
// when known, skipped when unknown, and encoded only when they differ from their
// default.
//
// Concurrency: plain values, no shared state.
#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::proto {
"""


def gen_header(apis, records):
    out = [HEADER_PRELUDE]
    for facts, req, resp in apis:
        for m in (req, resp):
            out += emit_struct_decl(m, m.name, m.fields, 0, top=True)
            out.append("")
    out.append("// __consumer_offsets records. On disk each is an int16 version, then the")
    out.append("// struct in that version (key and value versioned separately).")
    for m in records:
        out += emit_struct_decl(m, m.name, m.fields, 0, top=True)
        out.append("")
    out += [
        "// Every API the codec knows: the ranges the schema knows, not what the broker",
        "// advertises (that is the handler list's business).",
        "struct api_info {",
        "    int16_t key;",
        "    std::string_view name;",
        "    int16_t min_version;",
        "    int16_t max_version;",
        "    int16_t flexible_version;  // -1: never flexible",
        "};",
        "",
        f"inline constexpr std::array<api_info, {len(apis)}> api_table{{{{",
    ]
    for facts, req, _ in apis:
        flex = req.flexible if req.flexible is not None else -1
        out.append(f'    {{{req.api_key}, "{facts["name"]}", {req.lo}, {req.hi}, {flex}}},')
    out += [
        "}};",
        "",
        "constexpr const api_info* find_api(int16_t key) {",
        "    for (const auto& a : api_table)",
        "        if (a.key == key) return &a;",
        "    return nullptr;",
        "}",
        "",
        "// Calls f(std::type_identity<request>{}, std::type_identity<response>{}) for the",
        "// API; returns false (without calling f) for keys the codec does not know.",
        "template <typename F>",
        "bool visit_api(int16_t key, F&& f) {",
        "    switch (key) {",
    ]
    for facts, req, resp in apis:
        out.append(f"    case {req.api_key}:")
        out.append(f"        f(std::type_identity<{req.name}>{{}}, std::type_identity<{resp.name}>{{}});")
        out.append("        return true;")
    out += ["    default:", "        return false;", "    }", "}", "", "}  // namespace sluice::proto", ""]
    return "\n".join(out)


def gen_source(apis, records):
    out = ["// GENERATED by tools/kafka_codegen.py -- do not edit.",
           '#include "broker/protocol/messages.h"', "", "namespace sluice::proto {", ""]
    msgs = [m for _, req, resp in apis for m in (req, resp)] + records
    for m in msgs:
        for qname, fields in all_structs(m):
            out += emit_decode(m, qname, fields) + [""]
            out += emit_encode(m, qname, fields) + [""]
    out += ["}  // namespace sluice::proto", ""]
    return "\n".join(out)


def gen_samples(apis, records):
    msgs = [m for _, req, resp in apis for m in (req, resp)] + records
    h = ["#pragma once",
         "// GENERATED by tools/kafka_codegen.py -- do not edit.",
         "// fill_sample(): sets every field present in `version` to a non-default value",
         "// (nullable ones to null when seed is even). For codec round-trip tests.",
         '#include "broker/protocol/messages.h"', "", "namespace sluice::proto {", "",
         "std::span<const uint8_t> sample_records(int seed);"]
    c = ["// GENERATED by tools/kafka_codegen.py -- do not edit.", '#include "broker/protocol/samples.h"', "",
         "namespace sluice::proto {", "",
         "std::span<const uint8_t> sample_records(int seed) {",
         "    static const uint8_t bytes[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9};",
         "    return {bytes, static_cast<size_t>(5 + seed % 16)};",
         "}", ""]
    for m in msgs:
        for qname, fields in all_structs(m):
            h.append(f"void fill_sample({qname}& m, int16_t version, int seed);")
            c += emit_sample(m, qname, fields) + [""]
    h += ["", "}  // namespace sluice::proto", ""]
    c += ["}  // namespace sluice::proto", ""]
    return "\n".join(h), "\n".join(c)


def main():
    out_dir = pathlib.Path(sys.argv[1])
    apis, records = load_messages(sys.argv[2:])
    files = {"messages.h": gen_header(apis, records), "messages.cc": gen_source(apis, records)}
    files["samples.h"], files["samples.cc"] = gen_samples(apis, records)
    for name, text in files.items():
        path = out_dir / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


if __name__ == "__main__":
    main()
