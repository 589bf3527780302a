#!/usr/bin/python3
"""Merge the base OpenAPI document with each domain's fragment.

Usage: openapi_merge.py OUT BASE [FRAGMENT...]
A fragment holds "paths" and optionally "components" and "tags"; duplicate
paths or schema names are an error, so two rooms cannot silently collide.
"""
import json
import sys


def main():
    out, base, *frags = sys.argv[1:]
    with open(base) as f:
        doc = json.load(f)
    doc.setdefault("paths", {})
    doc.setdefault("components", {}).setdefault("schemas", {})
    doc.setdefault("tags", [])
    for path in frags:
        with open(path) as f:
            frag = json.load(f)
        for p, item in frag.get("paths", {}).items():
            if p in doc["paths"]:
                sys.exit(f"{path}: path {p} already defined")
            doc["paths"][p] = item
        for kind, entries in frag.get("components", {}).items():
            target = doc["components"].setdefault(kind, {})
            for name, schema in entries.items():
                if name in target:
                    sys.exit(f"{path}: components.{kind}.{name} already defined")
                target[name] = schema
        known = {t["name"] for t in doc["tags"]}
        for t in frag.get("tags", []):
            if t["name"] not in known:
                doc["tags"].append(t)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=False)
        f.write("\n")


if __name__ == "__main__":
    main()
