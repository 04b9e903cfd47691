#!/usr/bin/env bash
# Shrink what the device tool copies to a lent GPU machine (the working tree and the carried
# files must stay under 64 MiB; the presets alone are over 100 MB), and put it back afterwards.
#
#   bash gpu/slim.sh PRESET...    keep config.json, metadata.json, model.weights.h5 and styles.npz of
#                                 these presets (the --init-from of the run); every other file under
#                                 saved_models/ and docs/ leaves the index and is ignored for the call
#   bash gpu/slim.sh --undo       put the index and .git/info/exclude back as they were
#
# The device tool copies tracked files and untracked files git does not ignore, so a file stays
# behind only when it is both out of the index and ignored. Nothing is deleted from disk. Run
# --undo before any commit: a commit in between would record the presets as removed.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude=.git/info/exclude
backup=.git/info/exclude.before-slim

if [ "${1:-}" = "--undo" ]; then
    [ -f "$backup" ] || { echo "gpu/slim.sh: nothing to undo ($backup is missing)"; exit 0; }
    git reset -q -- saved_models docs
    mv "$backup" "$exclude"
    echo "gpu/slim.sh: index and $exclude restored; $(git status --porcelain -- saved_models docs | wc -l) changes under saved_models/ and docs/"
    exit 0
fi
[ $# -ge 1 ] || { echo "usage: bash gpu/slim.sh PRESET... | --undo"; exit 2; }
[ ! -f "$backup" ] || { echo "gpu/slim.sh: already slimmed ($backup exists): run 'bash gpu/slim.sh --undo' first"; exit 2; }
keep=$(mktemp)
for preset in "$@"; do
    name=$(basename "$preset")
    [ -f "saved_models/$name/config.json" ] || { echo "gpu/slim.sh: no preset saved_models/$name"; rm -f "$keep"; exit 2; }
    printf "saved_models/$name/%s\n" config.json metadata.json model.weights.h5 styles.npz >> "$keep"
done
if ! git diff --cached --quiet -- saved_models docs; then
    echo "gpu/slim.sh: saved_models/ or docs/ has staged changes: commit or unstage them first"; rm -f "$keep"; exit 2
fi
cp "$exclude" "$backup"
leave=$(mktemp)
git ls-files -- saved_models docs | { grep -v -x -F -f "$keep" || true; } > "$leave"
sed 's|^|/|' "$leave" >> "$exclude"
git rm -q --cached --pathspec-from-file="$leave"
removed=$(wc -l < "$leave")
rm -f "$leave" "$keep"
bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 du -cb 2>/dev/null | awk 'END {print $1}' || true)
echo "gpu/slim.sh: $removed files left out for the call; the tree that travels: $((${bytes:-0} / 1048576)) MiB (add the carried files; the limit is 64 MiB). Afterwards: bash gpu/slim.sh --undo"
