#!/usr/bin/env python3
"""A protoc plugin (for `buf generate`) that runs grpcio-tools' bundled protoc.

grpcio-tools ships protoc and the gRPC Python generator as a Python module, not as plugin
binaries. This adapter reads the CodeGeneratorRequest buf sends, hands the request's
descriptors to `grpc_tools.protoc` (--descriptor_set_in), and returns what it wrote:
`*_pb2.py` (messages), `*_pb2.pyi` (type stubs) and `*_pb2_grpc.py` (stubs/servicers).
Only the files buf asks for are generated. Needs the venv with grpcio-tools.
"""

import os
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        set_path = os.path.join(tmp, "in.binpb")
        with open(set_path, "wb") as f:
            f.write(descriptors.SerializeToString())
        out = os.path.join(tmp, "out")
        os.mkdir(out)
        args = [
            "protoc",
            f"--descriptor_set_in={set_path}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed (see stderr)"
        else:
            for root, _, files in os.walk(out):
                for name in sorted(files):
                    path = os.path.join(root, name)
                    with open(path, encoding="utf-8") as f:
                        response.file.add(name=os.path.relpath(path, out), content=f.read())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
