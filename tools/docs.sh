#!/usr/bin/env bash
# The collection's documentation as a user gets it: from the built tarball (tools/package.sh),
# installed into build/docs/collections:
#   1. antsibull-docs lint-collection-docs --plugin-docs (module, plugin and role docs; on the
#      checkout);
#   2. a docsite: antsibull-docs sphinx-init + its build steps (antsibull-docs collection, then
#      sphinx-build -W), with the guides in docs/ (Markdown, through myst-parser) as a "Guides"
#      section next to the plugin and role pages. Offline: no intersphinx inventories.
# Output: build/docs/site/build/html/index.html
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH="$top/.venv/bin:$PATH" ANSIBLE_NOCOLOR=1
unset ANSIBLE_CONFIG
out="$top/build/docs"
rm -rf "$out"
mkdir -p "$out"
tarball=$("$top/tools/package.sh" "$out/package")
(cd "$out" && ansible-galaxy collection install --offline -p collections "$tarball" >install.log 2>&1) \
    || { cat "$out/install.log" >&2; exit 1; }
export ANSIBLE_COLLECTIONS_PATH="$out/collections"

echo "docs: antsibull-docs lint-collection-docs"
# On the checkout (through build/collections, as make env links it): it finds bad references
# such as O(...) that the same run over the installed copy has been seen to miss.
ANSIBLE_COLLECTIONS_PATH="$top/build/collections" \
    antsibull-docs lint-collection-docs --plugin-docs "$top/build/collections/ansible_collections/coco/tdisp"

echo "docs: docsite (sphinx-init, antsibull-docs collection, guides, sphinx-build)"
site="$out/site"
mkdir -m 700 "$site"
antsibull-docs sphinx-init --use-current --dest-dir "$site" --project coco.tdisp \
    --title "coco.tdisp documentation" --copyright "coco.tdisp contributors" coco.tdisp >"$out/sphinx-init.log"
cat >>"$site/conf.py" <<'PY'

# coco.tdisp (tools/docs.sh): the guides are Markdown; the build is offline.
extensions.append('myst_parser')
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
intersphinx_mapping = {}
myst_heading_anchors = 3
# Guides link to source files of the repository (plugins/, tests/) that are no docsite pages;
# the plugin pages link to docs.ansible.com labels, which need the intersphinx inventories that
# an offline build cannot fetch (antsibull-docs lint-collection-docs checks the collection's own
# references); a few guide examples are abridged JSON that Pygments cannot lex.
suppress_warnings = ['myst.xref_missing', 'myst.header', 'ref.ref', 'misc.highlighting_failure']
PY
chmod og-w "$site/rst"  # antsibull-docs wants it writable by its owner only
antsibull-docs --config-file "$site/antsibull-docs.cfg" collection --cleanup everything --use-current \
    --dest-dir "$site/rst" coco.tdisp >"$out/antsibull-docs.log" 2>&1 || { cat "$out/antsibull-docs.log" >&2; exit 1; }
# The guides, from the installed collection (what users get).
guides="$site/rst/guides"
mkdir -p "$guides"
cp -r "$out/collections/ansible_collections/coco/tdisp/docs/." "$guides/"
{
    printf 'Guides\n======\n\n.. toctree::\n   :maxdepth: 1\n   :glob:\n\n   *\n   modules/*\n'
} >"$guides/index.rst"
sed -i 's/^Welcome to my Ansible collection documentation$/coco.tdisp: TDISP confidential-device policy/' "$site/rst/index.rst"
printf '\n.. toctree::\n   :maxdepth: 2\n   :caption: Guides:\n\n   guides/index\n' >>"$site/rst/index.rst"
sphinx-build -M html "$site/rst" "$site/build" -q -c "$site" -W --keep-going >"$out/sphinx.log" 2>&1 \
    || { cat "$out/sphinx.log" >&2; exit 1; }
n=$(find "$site/build/html/guides" -name '*.html' | wc -l)
[ "$n" -ge "$(find "$guides" -name '*.md' | wc -l)" ] || { echo "docs: guides missing from the docsite" >&2; exit 1; }
echo "docs: $site/build/html/index.html ($n guide pages)"
