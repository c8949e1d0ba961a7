#!/usr/bin/env bash
# Prints the path of the OpenTofu CLI the provider's tests run, building it
# first when the user cache does not have it yet: OpenTofu's source comes
# from the Go module proxy (go install refuses it, its go.mod has replace
# directives), is built with the local Go toolchain, and is kept in
# ${XDG_CACHE_HOME:-$HOME/.cache}/intelliauth-controlplane/bin/tofu-<version>.
# The provider's TestMain and .ci/run both call this script, so there is one
# recipe. Concurrent callers wait for one build (flock); the binary appears
# under its name only once complete (rename).
set -euo pipefail

version="${TOFU_VERSION:-1.10.6}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/intelliauth-controlplane/bin"
bin="$cache/tofu-$version"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$bin.lock"
flock 9
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

# Outside any module, so the download is OpenTofu's own and no go.mod or
# workspace around the caller is touched.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dir=$(cd "$work" && GOFLAGS= GOWORK=off go mod download -json "github.com/opentofu/opentofu@v$version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
  echo "tofu.sh: go mod download of github.com/opentofu/opentofu@v$version gave no source directory" >&2
  exit 1
fi

echo "tofu.sh: building OpenTofu $version into $bin (a few minutes, once)" >&2
start=$(date +%s)
(cd "$dir" && GOFLAGS=-buildvcs=false GOWORK=off go build -o "$work/tofu" ./cmd/tofu)
mv "$work/tofu" "$bin.tmp.$$"
mv "$bin.tmp.$$" "$bin"
echo "tofu.sh: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
