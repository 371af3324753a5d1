#!/usr/bin/env python3
"""Fold the long lines of changelog fragments so the whole-repository ansible-lint (yaml[line-length]) passes.

Usage: tools/fold-fragments.py [FILE ...]   (default: changelogs/fragments/*.yml)
Rewrites a fragment only when it has a line over 160 characters; the parsed content is unchanged
(checked before writing).
"""
import glob
import sys

import yaml

LIMIT = 160


def fold(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    if all(len(line) <= LIMIT for line in text.splitlines()):
        return False
    data = yaml.safe_load(text)
    out = '---\n' + yaml.safe_dump(data, width=100, sort_keys=False, allow_unicode=True, default_flow_style=False, indent=2)
    # Fragments are one mapping of section -> list of strings; yamllint wants the list items
    # indented under their section, as the rest of the repository writes them.
    out = '\n'.join(line if line == '---' or not line.startswith((' ', '-')) else '  ' + line
                    for line in out.splitlines()) + '\n'
    if yaml.safe_load(out) != data:
        raise SystemExit('%s: folding would change the content' % path)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(out)
    return True


def main(argv):
    paths = argv or sorted(glob.glob('changelogs/fragments/*.yml'))
    for path in paths:
        if fold(path):
            print('folded %s' % path)


if __name__ == '__main__':
    main(sys.argv[1:])
