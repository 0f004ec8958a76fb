#!/usr/bin/env python3
"""Turn web/ files into a C array, so arca serves its assets from the binary.

usage: embed.py OUTPUT.c FILE...  (the build runs it; see meson.build)
"""
import os
import sys

TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".png": "image/png", ".svg": "image/svg+xml"}


def main():
    out, files = sys.argv[1], sys.argv[2:]
    lines = ['#include "web/assets.h"', ""]
    for i, path in enumerate(files):
        data = open(path, "rb").read()
        body = ",".join(str(b) for b in data)
        lines.append("static const unsigned char asset_%d[] = {%s};" % (i, body))
    lines.append("const struct asset web_assets[] = {")
    for i, path in enumerate(files):
        name = os.path.basename(path)
        kind = TYPES[os.path.splitext(name)[1]]
        lines.append('    {"%s", "%s", asset_%d, sizeof(asset_%d)},' % (name, kind, i, i))
    lines.append("    {0},")
    lines.append("};")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
