#!/usr/bin/env bash
# Installs the pinned code generators and client test dependencies into ignored,
# repo-local folders. Idempotent: quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
tools="$root/clients/.tools"
mkdir -p "$tools/bin"

PROTOC_GEN_GO_VERSION=v1.36.12       # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2    # google.golang.org/grpc/cmd/protoc-gen-go-grpc

if ! "$tools/bin/protoc-gen-go" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_VERSION}"; then
  echo "clients: installing protoc-gen-go $PROTOC_GEN_GO_VERSION"
  GOBIN="$tools/bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if ! "$tools/bin/protoc-gen-go-grpc" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_GRPC_VERSION#v}"; then
  echo "clients: installing protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION"
  GOBIN="$tools/bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

# Python: one venv for generation (grpcio-tools) and the tests, exact pins.
req=clients/python/requirements-dev.txt
stamp="$tools/venv/.requirements"
if [ ! -x "$tools/venv/bin/python" ] || ! cmp -s "$req" "$stamp"; then
  echo "clients: installing the Python venv ($req)"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
cat > "$tools/bin/protoc-gen-grpcio" <<WRAPPER
#!/bin/sh
exec "$tools/venv/bin/python" "$root/clients/tools/protoc_gen_grpcio.py" "\$@"
WRAPPER
chmod +x "$tools/bin/protoc-gen-grpcio"

# TypeScript: protoc-gen-es, the runtime, esbuild and playwright-core from the lockfile.
lock=clients/typescript/package-lock.json
if [ ! -f clients/typescript/node_modules/.package-lock.json ] \
  || ! cmp -s "$lock" "$tools/package-lock.json"; then
  echo "clients: npm ci in clients/typescript"
  npm ci --prefix clients/typescript --no-audit --no-fund --loglevel=error
  cp "$lock" "$tools/package-lock.json"
fi
