#!/usr/bin/env python3
"""The built-in layout tables (lib/abi/layout_tables.c) must equal, field by
field, what pyxray's generator derives from the DWARF of each build on this
machine (pyenv's 3.8-3.13, and the test bed root's Debian 3.14/3.15 through
their -dbg debug files): a table can never drift from the build it was made
from, nor miss a field added to PYX_LAYOUT_FIELDS since.  The 3.14/3.15 tables
also carry the eval loop's .cold range (PYX_LAYOUT_SYMBOLS), checked the same
way against the debug file's .symtab."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--pyxray", required=True)
ap.add_argument("--python")
args = ap.parse_args()
top = os.environ.get("PYX_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))


def tables(text):
    """{table name: {field: value}} and the rows naming each table."""
    out = {}
    for m in re.finditer(r"static const struct pyx_layout_kv (\w+)\[\] = \{(.*?)\n\};", text, re.S):
        out[m.group(1)] = dict((k, int(v)) for k, v in re.findall(r'\{ "(\w+)", (-?\d+) \}', m.group(2)))
    rows = re.findall(r'\{ (\d+), (\d+), (\d+), "([0-9a-f]*)", "([^"]*)", (\w+) \}', text)
    return out, rows


committed_text = open(os.path.join(top, "lib", "abi", "layout_tables.c")).read()
with tempfile.TemporaryDirectory() as d:
    fresh = os.path.join(d, "layout_tables.c")
    subprocess.run(["bash", os.path.join(top, "scripts", "gen-layout-tables.sh"), args.pyxray, fresh],
                   check=True)
    fresh_text = open(fresh).read()

committed, crows = tables(committed_text)
generated, grows = tables(fresh_text)
failures = 0
if not generated:
    print("SKIP: no CPython build with DWARF on this machine to generate tables from")
    sys.exit(77)
for name, fields in sorted(generated.items()):
    have = committed.get(name)
    if have is None:
        print("FAIL: table %s (a build on this machine) is missing from lib/abi/layout_tables.c" % name)
        failures += 1
        continue
    for field in sorted(set(fields) | set(have)):
        if fields.get(field) != have.get(field):
            print("FAIL: %s.%s: committed %s, DWARF says %s" % (name, field, have.get(field), fields.get(field)))
            failures += 1
    print("table %s: %d fields checked" % (name, len(fields)))
for name in sorted(set(committed) - set(generated)):
    print("note: table %s has no build on this machine to check it against" % name)
# Rows of builds not on this machine (the test bed root missing) are only
# noted above; every generated row must be committed as generated.
missing_rows = [r for r in grows if r not in crows]
if missing_rows and not failures:
    print("FAIL: the table rows differ from what the generator writes")
    failures += 1
print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
sys.exit(1 if failures else 0)
