#!/usr/bin/env bash
# check_api_examples.sh SOURCE_DIR [--update]: docs/API.md quotes the
# programs in docs/examples/ exactly (ctest: ApiDocExamplesTest).
#
# A ```cpp block in API.md whose first line is `// docs/examples/NAME.cc`
# must equal that file, byte for byte; every docs/examples/*.cc must be
# quoted at least once. The build compiles every example and the Example*
# tests run them, so the code in the documentation cannot rot.
#
# --update rewrites those blocks of API.md from the files instead (then
# review the diff).
set -euo pipefail
root=$(cd "$1" && pwd)
doc=$root/docs/API.md
examples=$root/docs/examples
[[ -f $doc ]] || { echo "missing $doc" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [[ ${2:-} == --update ]]; then
  awk -v dir="$root" '
    in_block && /^```$/ { in_block = 0 }
    in_block { next }
    pending {
      pending = 0
      if (match($0, /^\/\/ docs\/examples\/[A-Za-z0-9_]+\.cc$/)) {
        file = dir "/" substr($0, 4)
        while ((getline line < file) > 0) print line
        close(file)
        in_block = 1
        next
      }
    }
    /^```cpp$/ { pending = 1 }
    { print }
  ' "$doc" >"$tmp/API.md"
  cp "$tmp/API.md" "$doc"
  echo "updated $doc"
  exit 0
fi

# Split the quoted examples out: $tmp/NAME.cc.N, one per block.
awk -v out="$tmp" '
  in_block && /^```$/ { in_block = 0; close(file); next }
  in_block { print > file; next }
  pending {
    pending = 0
    if (match($0, /^\/\/ docs\/examples\/[A-Za-z0-9_]+\.cc$/)) {
      name = substr($0, 18)
      file = out "/" name "." (++count[name])
      print > file
      in_block = 1
      next
    }
  }
  /^```cpp$/ { pending = 1 }
' "$doc"

status=0
quoted=0
for block in "$tmp"/*.cc.*; do
  [[ -e $block ]] || break
  name=$(basename "${block%.*}")
  quoted=$((quoted + 1))
  if [[ ! -f $examples/$name ]]; then
    echo "docs/API.md quotes docs/examples/$name, which does not exist" >&2
    status=1
  elif ! diff -u --label "docs/examples/$name" --label "docs/API.md: $name" \
         "$examples/$name" "$block" >&2; then
    echo "docs/API.md differs from docs/examples/$name" \
         "(tests/docs/check_api_examples.sh $root --update)" >&2
    status=1
  fi
done
for file in "$examples"/*.cc; do
  name=$(basename "$file")
  if [[ $(head -n 1 "$file") != "// docs/examples/$name" ]]; then
    echo "docs/examples/$name must start with the line: // docs/examples/$name" >&2
    status=1
  fi
  if ! compgen -G "$tmp/$name.*" >/dev/null; then
    echo "docs/examples/$name is not quoted in docs/API.md" >&2
    status=1
  fi
done
[[ $status == 0 ]] && echo "docs/API.md quotes all $(ls "$examples"/*.cc | wc -l) examples exactly ($quoted blocks)"
exit $status
