#!/usr/bin/env python3
"""Load docs/protocol.schema.json whole in a standard validator (Python's jsonschema, Draft
2020-12), check that it uses only the standard's keywords and formats, and validate sample
frames, answers and event payloads against it. Exits non-zero saying what is wrong.

usage: check-schema.py SCHEMA SAMPLES   (SAMPLES: JSON {"<$defs name or 'frame'>": [values]})
"""
import json
import sys

from jsonschema import Draft202012Validator, FormatChecker

KEYWORDS = {
    "$schema", "$id", "$ref", "$defs", "$comment", "$anchor", "$dynamicRef", "$dynamicAnchor",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "type", "enum", "const", "properties", "additionalProperties", "required",
    "patternProperties", "propertyNames", "items", "prefixItems", "contains", "minItems",
    "maxItems", "uniqueItems", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "minLength", "maxLength", "pattern", "format", "allOf", "anyOf", "oneOf",
    "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "minProperties",
    "maxProperties", "unevaluatedProperties", "unevaluatedItems", "contentEncoding",
    "contentMediaType",
}
# Keywords whose value is a map of names (not schemas' keywords).
NAME_MAPS = {"properties", "patternProperties", "$defs", "dependentSchemas"}


def keywords(node, where, problems):
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in KEYWORDS:
                problems.append(f"{where}: `{key}` is not a Draft 2020-12 keyword")
            if key in NAME_MAPS and isinstance(value, dict):
                for name, sub in value.items():
                    keywords(sub, f"{where}/{key}/{name}", problems)
            elif key in ("default", "examples", "const", "enum"):
                continue
            else:
                keywords(value, f"{where}/{key}", problems)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            keywords(item, f"{where}/{i}", problems)


def main():
    schema = json.load(open(sys.argv[1]))
    samples = json.load(open(sys.argv[2]))
    Draft202012Validator.check_schema(schema)
    problems = []
    keywords(schema, "#", problems)
    checker = FormatChecker()
    for name, values in samples.items():
        target = schema if name == "frame" else {
            "$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{name}"}
        if name != "frame" and name not in schema["$defs"]:
            problems.append(f"no $defs/{name}")
            continue
        validator = Draft202012Validator(target, format_checker=checker)
        for value in values:
            for error in validator.iter_errors(value):
                problems.append(f"{name}: {json.dumps(value)[:120]}: {error.message}")
    if problems:
        print("\n".join(problems[:50]))
        sys.exit(1)
    print(f"ok: {len(schema['$defs'])} definitions, {sum(map(len, samples.values()))} samples")


main()
