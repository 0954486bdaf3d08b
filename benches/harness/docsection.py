"""Replacing one generated section of a Markdown file (between two HTML comment markers),
shared by the benchmark reports."""

import os


def replace_section(path, start, end, text):
    """Writes `text` (which begins with `start` and ends with `end`) in place of the section
    between the markers in `path`, or appends it when the markers are missing."""
    doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    if start in doc and end in doc:
        before, rest = doc.split(start, 1)
        _, after = rest.split(end, 1)
        doc = before + text.rstrip("\n") + after
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    with open(path, "w") as fh:
        fh.write(doc)
