#!/usr/bin/python3
"""Checks shotsync --json outputs against docs/shotsync.schema.json.

validate.py SCHEMA OUTDIR: OUTDIR holds CASE.out (stdout), CASE.rc (the
process's exit code) and CASE.cmd (the expected "command" field). Besides the
schema, it checks what a schema cannot: stdout is exactly one JSON object,
exit_code is the process's, and "rejected": N comes with the N files (or an
entry for those rejected by earlier runs)."""
import json
import pathlib
import re
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("FAIL: python3 jsonschema missing: apt-get install -y python3-jsonschema")


def rejected_named(doc):
    """Files errors[] names as rejected (on_rejected = "fail", the default),
    counting one "N files rejected by earlier runs" entry as N."""
    n = 0
    for entry in doc["errors"]:
        if entry.get("code") == "rejected_earlier":
            n += int(re.match(r"(\d+) ", entry["reason"]).group(1))
        elif entry.get("code") == "rejected":
            n += 1
    return n


def check(schema_validator, case_dir, case):
    problems = []
    text = (case_dir / f"{case}.out").read_text()
    rc = int((case_dir / f"{case}.rc").read_text())
    want_command = (case_dir / f"{case}.cmd").read_text().strip()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"stdout is not one JSON document ({e}): {text[:300]!r}"]
    for err in schema_validator.iter_errors(doc):
        path = "/".join(str(p) for p in err.absolute_path)
        problems.append(f"schema: at /{path}: {err.message[:400]}")
    if not isinstance(doc, dict):
        return problems
    if doc.get("command") != want_command:
        problems.append(f'"command" is {doc.get("command")!r}, expected {want_command!r}')
    if doc.get("exit_code") != rc:
        problems.append(f'"exit_code" is {doc.get("exit_code")!r} but the process exited {rc}')
    if rc != 0 and not doc.get("errors") and not doc.get("warnings"):
        problems.append("non-zero exit with errors[] and warnings[] empty")
    if isinstance(doc.get("rejected"), int) and doc["command"] in ("sync", "plan", "push") and not problems:
        if rejected_named(doc) < doc["rejected"]:
            problems.append(f'"rejected": {doc["rejected"]} but only {rejected_named(doc)} named')
    return problems


def main():
    schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    case_dir = pathlib.Path(sys.argv[2])
    cases = sorted(p.stem for p in case_dir.glob("*.out"))
    if not cases:
        sys.exit("FAIL: no outputs to check")
    failed = 0
    for case in cases:
        problems = check(validator, case_dir, case)
        print(f"{'FAIL' if problems else 'ok  '} {case}")
        for p in problems:
            print(f"     {p}")
        failed += bool(problems)
    print(f"{len(cases) - failed} of {len(cases)} outputs follow the schema")
    sys.exit(1 if failed else 0)


main()
