#!/usr/bin/env bash
# Regenerates every client from proto/ with clients/buf.gen.yaml, local plugins only.
# Installs the pinned plugins first (idempotent, quick when present) into ignored folders:
#   clients/.tools/bin     protoc-gen-go, protoc-gen-go-grpc (go install), the Python adapter
#   clients/.tools/venv    grpcio-tools and the Python test deps (clients/python/requirements-dev.txt)
#   clients/typescript/node_modules   protoc-gen-es (package-lock.json)
# buf comes from .ci/node_modules (bash .ci/setup). Usage: bash clients/generate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD


bash clients/tools/install.sh

tools="$root/clients/.tools"
export PATH="$tools/bin:$root/clients/typescript/node_modules/.bin:$PATH"
buf="$root/.ci/node_modules/.bin/buf"
[ -x "$buf" ] || { echo "generate: buf missing: run bash .ci/setup" >&2; exit 1; }

echo "generate: buf generate"
"$buf" generate proto --template clients/buf.gen.yaml

# Python: octo.v1 only (google.* comes from googleapis-common-protos), plus package markers.
rm -rf clients/python/src/octo
mkdir -p clients/python/src/octo
cp -r clients/.gen/python/octo/v1 clients/python/src/octo/v1
printf '"""Generated protobuf and gRPC code of the Octo API (octo.v1)."""\n' \
  > clients/python/src/octo/__init__.py
printf '"""Generated from proto/octo/v1 by clients/generate.sh; do not edit."""\n' \
  > clients/python/src/octo/v1/__init__.py
touch clients/python/src/octo/py.typed

# Go: the octov1 package only (google.* comes from google.golang.org/genproto).
rm -rf clients/go/octov1 && mkdir -p clients/go
cp -r clients/.gen/go/github.com/octo-agents/octo/clients/go/octov1 clients/go/octov1
rm -rf clients/.gen
echo "generate: ok"
