#!/usr/bin/env python3
"""Generates a service's Rust model (shapes with constraints, typed input and
output structures) from the botocore service model.

    python3 scripts/gen_model.py kinesis 2013-12-02 crates/riffle-streams/src/model.rs
    python3 scripts/gen_model.py --check kinesis 2013-12-02 crates/riffle-streams/src/model.rs
    python3 scripts/gen_model.py firehose 2015-08-04 crates/riffle-firehose/src/model.rs

The output is checked in. `--check` writes nothing: it regenerates the model
in memory and exits non-zero if the checked-in file differs, or if the
installed botocore is not the one pinned in tests/python/requirements.txt (a
different botocore would report drift that is not there). `scripts/test` runs
it after installing the pinned clients, before building.
"""
import difflib
import gzip
import json
import os
import re
import sys

import botocore

KEYWORDS = {"type", "match", "ref", "mod", "fn", "struct", "enum", "use", "as", "in", "loop", "move", "self", "where", "async", "await", "dyn"}
# Operations Riffle does not serve, per service: Data Streams' Channels and
# Queues.
EXCLUDE = {"kinesis": re.compile(r"Channel|Queue")}
# Services whose model is far larger than what Riffle serves: only these
# operations, and the shapes they reach, are generated.
INCLUDE = {"glue": {
    "CreateDatabase", "GetDatabase", "GetDatabases", "DeleteDatabase",
    "CreateTable", "GetTable", "GetTables", "GetTableVersion",
    "GetTableVersions", "UpdateTable", "DeleteTable",
    # What Terraform's Glue resources read besides.
    "GetTags", "TagResource", "UntagResource", "GetPartitionIndexes",
}, "secretsmanager": {
    # What Firehose's SecretsManagerConfiguration reads, and what setting
    # such secrets up with boto3, the CLI, Terraform or CDK calls.
    "CreateSecret", "DescribeSecret", "GetSecretValue", "BatchGetSecretValue",
    "PutSecretValue", "UpdateSecret", "DeleteSecret", "RestoreSecret",
    "ListSecrets", "ListSecretVersionIds", "TagResource", "UntagResource",
    "GetRandomPassword", "GetResourcePolicy",
}}

# The title of each service's generated module.
TITLES = {
    "kinesis": "Kinesis Data Streams",
    "firehose": "Amazon Data Firehose",
    "kinesisanalytics": "Amazon Kinesis Analytics (SQL applications)",
    "glue": "AWS Glue Data Catalog",
    "secretsmanager": "AWS Secrets Manager",
    "kinesisvideo": "Amazon Kinesis Video Streams",
    "kinesis-video-media": "Amazon Kinesis Video Streams Media",
    "kinesis-video-archived-media": "Amazon Kinesis Video Streams Archived Media",
}

# Model patterns that use what `regex-lite` lacks (look-around, `\p{..}`
# classes, `\uXXXX` escapes), with a pattern it compiles that accepts the
# same strings. Messages still quote the model's pattern. `\p{L}\p{Z}\p{N}`
# becomes ASCII letters, digits and space plus every non-ASCII character,
# which is wider than Unicode's letters, separators and numbers.
_TAG = r"[A-Za-z0-9 _.:/=+\-@%\x{80}-\x{10FFFF}]"
PATTERN_REWRITES = {
    # Glue's single- and multi-line strings: Java's UTF-16 surrogate pairs
    # spelled as the code points above the BMP they encode.
    r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*": r"[\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}\t]*",
    r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\r\n\t]*": r"[\x{20}-\x{D7FF}\x{E000}-\x{FFFD}\x{10000}-\x{10FFFF}\r\n\t]*",
    # Letters, numbers and punctuation: every visible ASCII character and
    # every non-ASCII one (wider than Unicode's classes).
    r"[\p{L}\p{N}\p{P}]*": r"[!-~\x{80}-\x{10FFFF}]*",
    r"[a-zA-Z0-9-_$#.]+": r"[a-zA-Z0-9\-_$#.]+",
    # HTTP endpoint URLs: Riffle also delivers to plain http:// receivers
    # (local test servers); see the README.
    r"https://.*": r"https?://.*",
    r"[\u0001-\uFFFF]*": r"[\x{0001}-\x{FFFF}]*",
    # Java's possessive `{1}+` and `{12}+` are plain counts here.
    r"arn:aws:kinesisanalytics:[a-z]{2}-[a-z]+-\d{1}+:\d{12}+:application/[a-zA-Z0-9_.-]{1,128}": (
        r"arn:aws:kinesisanalytics:[a-z]{2}-[a-z]+-\d{1}:\d{12}:application/[a-zA-Z0-9_.-]{1,128}"
    ),
    r"^(?!\s*$).+": r".*\S.*",
    r"^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$": f"{_TAG}*",
    # Kinesis Video's tag keys and values: the same class without `%`.
    r"^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$": f"{_TAG.replace('%', '')}*",
    r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*": f"{_TAG.replace('%', '')}*",
    # Not starting with `aws:`, spelled out as an alternation.
    r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$": (
        f"(?:|{_TAG.replace('a-z', 'b-z')}{_TAG}*|a|a{_TAG.replace('a-z', 'a-vx-z')}{_TAG}*"
        f"|aw|aw{_TAG.replace('a-z', 'a-rt-z')}{_TAG}*|aws|aws{_TAG.replace(':', '')}{_TAG}*)"
    ),
    # Redshift cluster URLs: AWS's `*.redshift.*` hosts (look-around spelled
    # out), and also any host name or IP address (localhost, 127.0.0.1,
    # [::1]), for a PostgreSQL server standing in for the cluster; see the
    # README's "Redshift on PostgreSQL".
    r"jdbc:(redshift|postgresql)://((?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+(redshift(-serverless)?)\.([a-zA-Z0-9\.\-]+):\d{1,5}/[a-zA-Z0-9_$-]+": (
        r"jdbc:(redshift|postgresql)://(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(redshift(-serverless)?)\.([a-zA-Z0-9\.\-]+)"
        r"|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
        r":\d{1,5}/[a-zA-Z0-9_$-]+"
    ),
}

# The order in which AWS reports validation errors is its own (a Java hash
# order), not the model's. Where it was captured from real responses, members
# listed here are validated first, in this order.
MEMBER_ORDER = {"kinesis": {
    "AddTagsToStreamInput": ["Tags", "StreamName"],
    "CreateStreamInput": ["ShardCount", "StreamName"],
    "DecreaseStreamRetentionPeriodInput": ["RetentionPeriodHours", "StreamName"],
    "IncreaseStreamRetentionPeriodInput": ["RetentionPeriodHours", "StreamName"],
    "DescribeStreamInput": ["Limit", "ExclusiveStartShardId", "StreamName"],
    "GetRecordsInput": ["Limit", "ShardIterator"],
    "GetShardIteratorInput": ["ShardId", "ShardIteratorType", "StartingSequenceNumber", "StreamName", "Timestamp"],
    "ListShardsInput": ["MaxResults", "ExclusiveStartShardId", "StreamName", "NextToken"],
    "ListStreamsInput": ["Limit", "ExclusiveStartStreamName"],
    "ListTagsForStreamInput": ["Limit", "ExclusiveStartTagKey", "StreamName"],
    "MergeShardsInput": ["ShardToMerge", "AdjacentShardToMerge", "StreamName"],
    "PutRecordInput": ["SequenceNumberForOrdering", "PartitionKey", "ExplicitHashKey", "Data", "StreamName"],
    "PutRecordsInput": ["Records", "StreamName"],
    "PutRecordsRequestEntry": ["PartitionKey", "ExplicitHashKey", "Data"],
    "RemoveTagsFromStreamInput": ["TagKeys", "StreamName"],
    "SplitShardInput": ["NewStartingHashKey", "StreamName", "ShardToSplit"],
}}

# Enum value sets as AWS prints them in validation messages.
ENUM_ORDER = {"kinesis": {
    "ShardIteratorType": ["AFTER_SEQUENCE_NUMBER", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "TRIM_HORIZON"],
}}


def ordered_members(service, name, shape):
    members = list(shape.get("members", {}).items())
    first = MEMBER_ORDER.get(service, {}).get(name, [])
    rank = {m: i for i, m in enumerate(first)}
    return sorted(members, key=lambda kv: rank.get(kv[0], len(first)))


def load(service, version):
    base = os.path.join(os.path.dirname(botocore.__file__), "data", service, version)
    path = os.path.join(base, "service-2.json")
    if os.path.exists(path):
        return json.load(open(path))
    return json.load(gzip.open(path + ".gz"))


def snake(name):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    s = s.lower()
    return f"r#{s}" if s in KEYWORDS else s


def screaming(name):
    return snake(name).replace("r#", "").upper()


def opt(v):
    return "None" if v is None else f"Some({int(v)})"


PINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python", "requirements.txt")


def pinned_botocore():
    with open(PINS) as f:
        for line in f:
            m = re.match(r"\s*botocore==(\S+)", line)
            if m:
                return m.group(1)
    return None


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    if len(args) != 3:
        sys.exit(f"usage: {sys.argv[0]} [--check] SERVICE VERSION OUT")
    service, version, out = args
    if check:
        pin = pinned_botocore()
        if pin != botocore.__version__:
            sys.exit(f"gen_model.py --check: botocore {botocore.__version__} is installed, {pin} is pinned in {os.path.normpath(PINS)}")
    model = load(service, version)
    shapes = model["shapes"]
    exclude = EXCLUDE.get(service)
    include = INCLUDE.get(service)
    ops = {n: o for n, o in model["operations"].items()
           if not (exclude and exclude.search(n)) and (include is None or n in include)}

    reachable = set()

    def walk(name):
        if name in reachable:
            return
        s = shapes[name]
        if s.get("exception") or s.get("eventstream"):
            return
        reachable.add(name)
        for m in s.get("members", {}).values():
            walk(m["shape"])
        for k in ("member", "key", "value"):
            if k in s:
                walk(s[k]["shape"])

    for o in ops.values():
        for k in ("input", "output"):
            if k in o:
                walk(o[k]["shape"])
    # Event payloads are encoded with the same machinery.
    for n, s in shapes.items():
        if include is not None:
            break
        if s.get("eventstream"):
            for m in s["members"].values():
                if not shapes[m["shape"]].get("exception"):
                    walk(m["shape"])

    patterns = {}
    lines = [
        f"//! {TITLES[service]} model, generated by `scripts/gen_model.py` from",
        f"//! botocore {botocore.__version__} (`{service}/{version}`). Do not edit by hand.",
        "#![allow(clippy::all, dead_code, unused_imports, unused_mut)]",
        "",
        "use std::collections::BTreeMap;",
        "",
        "use bytes::Bytes;",
        "use riffle_wire::shape::{FromValue, IntoValue, Member, Pattern, Shape, Timestamp};",
        "use riffle_wire::{Map, Value};",
        "",
    ]

    def rust_type(name):
        s = shapes[name]
        t = s["type"]
        return {
            "string": "String",
            "integer": "i64",
            "long": "i64",
            "boolean": "bool",
            "blob": "Bytes",
            "timestamp": "Timestamp",
            "double": "f64",
        }.get(t) or (
            f"Vec<{rust_type(s['member']['shape'])}>" if t == "list"
            else f"BTreeMap<String, {rust_type(s['value']['shape'])}>" if t == "map"
            else name
        )

    def reaches(start, target):
        seen, todo = set(), [start]
        while todo:
            n = todo.pop()
            if n == target:
                return True
            if n in seen or n not in reachable:
                continue
            seen.add(n)
            s = shapes[n]
            todo += [m["shape"] for m in s.get("members", {}).values()]
            todo += [s[k]["shape"] for k in ("member", "value") if k in s]
        return False

    def member_type(owner, shape):
        # A structure member that leads back to its owner is boxed.
        t = rust_type(shape)
        return f"Box<{t}>" if shapes[shape]["type"] == "structure" and reaches(shape, owner) else t

    shape_lines = []
    for name in sorted(reachable):
        s = shapes[name]
        t = s["type"]
        st = screaming(name)
        if t == "structure":
            req = set(s.get("required", []))
            members = []
            for mn, m in ordered_members(service, name, s):
                if m["shape"] not in reachable:
                    continue
                members.append(f'    Member {{ name: "{mn}", shape: &{screaming(m["shape"])}, required: {str(mn in req).lower()} }},')
            cls = f"com.amazonaws.{service}.v{version.replace('-', '')}.{name}"
            shape_lines.append(f'pub static {st}: Shape = Shape::Structure {{ class: "{cls}", members: &[')
            shape_lines += members
            shape_lines.append("] };")
        elif t == "list":
            shape_lines.append(f"pub static {st}: Shape = Shape::List {{ member: &{screaming(s['member']['shape'])}, min: {opt(s.get('min'))}, max: {opt(s.get('max'))} }};")
        elif t == "map":
            shape_lines.append(f"pub static {st}: Shape = Shape::Map {{ key: &{screaming(s['key']['shape'])}, value: &{screaming(s['value']['shape'])}, min: {opt(s.get('min'))}, max: {opt(s.get('max'))} }};")
        elif t == "string":
            pat = "None"
            if "pattern" in s:
                pn = f"P_{st}"
                patterns[pn] = s["pattern"]
                pat = f"Some(&{pn})"
            values = s.get("enum", [])
            shown = ENUM_ORDER.get(service, {}).get(name, values)
            assert sorted(shown) == sorted(values), name
            enums = ", ".join(json.dumps(e) for e in shown)
            shape_lines.append(f"pub static {st}: Shape = Shape::String {{ min: {opt(s.get('min'))}, max: {opt(s.get('max'))}, pattern: {pat}, enums: &[{enums}] }};")
        elif t in ("integer", "long"):
            shape_lines.append(f"pub static {st}: Shape = Shape::Integer {{ min: {opt(s.get('min'))}, max: {opt(s.get('max'))}, long: {str(t == 'long').lower()} }};")
        elif t == "boolean":
            shape_lines.append(f"pub static {st}: Shape = Shape::Boolean;")
        elif t == "blob":
            shape_lines.append(f"pub static {st}: Shape = Shape::Blob {{ min: {opt(s.get('min'))}, max: {opt(s.get('max'))} }};")
        elif t == "timestamp":
            shape_lines.append(f"pub static {st}: Shape = Shape::Timestamp;")
        elif t == "double":
            shape_lines.append(f"pub static {st}: Shape = Shape::Double;")
        else:
            raise SystemExit(f"unhandled shape type {t} for {name}")

    lines.append("/// Model regular expressions, by the shape that uses them.")
    for pn, src in sorted(patterns.items()):
        if src in PATTERN_REWRITES:
            lines.append(f"pub static {pn}: Pattern = Pattern::rewritten({json.dumps(src)}, {json.dumps(PATTERN_REWRITES[src])});")
        else:
            lines.append(f"pub static {pn}: Pattern = Pattern::new({json.dumps(src)});")
    lines.append("")
    lines.append("/// Every pattern, for the test that they all compile.")
    lines.append("pub static PATTERNS: &[&Pattern] = &[" + ", ".join(f"&{p}" for p in sorted(patterns)) + "];")
    lines.append("")
    lines += shape_lines
    lines.append("")

    # Operations: name -> input shape.
    lines.append("/// The operations served, with their input shapes, in model order.")
    lines.append("pub static OPERATIONS: &[(&str, &Shape)] = &[")
    for n in sorted(ops):
        inp = ops[n].get("input", {}).get("shape")
        lines.append(f'    ("{n}", &{screaming(inp)}),' if inp else f'    ("{n}", &EMPTY),')
    lines.append("];")
    lines.append('pub static EMPTY: Shape = Shape::Structure { class: "Empty", members: &[] };')
    lines.append("")
    if model["metadata"]["protocol"] == "rest-json":
        # REST: each operation is `POST /<path>`; the router matches paths.
        paths = sorted((ops[n]["http"]["requestUri"].lstrip("/"), n) for n in ops)
        lines.append("/// Each operation's request path (without its leading slash), by path.")
        lines.append("pub static PATH_OPERATIONS: &[(&str, &str)] = &[")
        lines += [f'    ("{p}", "{n}"),' for p, n in paths]
        lines.append("];")
        lines.append("/// The request paths, for the router.")
        lines.append("pub static PATHS: &[&str] = &[" + ", ".join(f'"{p}"' for p, _ in paths) + "];")
        lines.append("")

    # Typed structures.
    for name in sorted(reachable):
        s = shapes[name]
        if s["type"] != "structure":
            continue
        req = set(s.get("required", []))
        members = [(mn, m) for mn, m in ordered_members(service, name, s) if m["shape"] in reachable]
        doc = " ".join(re.sub(r"<[^>]+>", "", s.get("documentation", "")).split())[:200]
        if doc:
            lines.append(f"/// {doc}")
        lines.append("#[derive(Debug, Clone, Default, PartialEq)]")
        lines.append(f"pub struct {name} {{")
        for mn, m in members:
            t = member_type(name, m["shape"])
            lines.append(f"    pub {snake(mn)}: {t if mn in req else f'Option<{t}>'},")
        lines.append("}")
        lines.append("")
        lines.append(f"impl FromValue for {name} {{")
        lines.append("    fn from_value(v: Value) -> Self {")
        if members:
            lines.append("        let mut m = match v { Value::Map(m) => m, _ => Map::new() };")
            lines.append("        Self {")
            for mn, m in members:
                if mn in req:
                    lines.append(f'            {snake(mn)}: m.take("{mn}").map(FromValue::from_value).unwrap_or_default(),')
                else:
                    lines.append(f'            {snake(mn)}: m.take("{mn}").map(FromValue::from_value),')
            lines.append("        }")
        else:
            lines.append("        let _ = v;")
            lines.append("        Self {}")
        lines.append("    }")
        lines.append("}")
        lines.append("")
        lines.append(f"impl IntoValue for {name} {{")
        lines.append("    fn into_value(self) -> Value {")
        lines.append(f"        let mut m = Map::with_capacity({len(members)});")
        for mn, m in members:
            if mn in req:
                lines.append(f'        m.put("{mn}", self.{snake(mn)}.into_value());')
            else:
                lines.append(f'        m.put("{mn}", self.{snake(mn)}.map(IntoValue::into_value));')
        lines.append("        Value::Map(m)")
        lines.append("    }")
        lines.append("}")
        lines.append("")

    text = "\n".join(lines)
    if check:
        with open(out) as f:
            current = f.read()
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), out, "regenerated", lineterm="", n=1)
            sys.stderr.write("\n".join(list(diff)[:60]) + "\n")
            sys.exit(f"{out} differs from what scripts/gen_model.py generates from botocore {botocore.__version__}; regenerate it")
        return
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
