"""Regenerate the ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` modules from the .proto files.

Usage: ``python -m protos.generate`` (needs grpcio-tools, installed with the ``test`` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parent
PROTO_FILES = sorted(PROTO_DIR.glob("*.proto"))


def generate(output_dir: Path = ROOT) -> None:
    """Run protoc over every .proto file, writing the modules below ``output_dir/protos``."""
    from grpc_tools import protoc

    (output_dir / "protos").mkdir(parents=True, exist_ok=True)
    for proto in PROTO_FILES:
        args = [
            "protoc",
            f"-I{ROOT}",
            f"--python_out={output_dir}",
            f"--pyi_out={output_dir}",
            f"--grpc_python_out={output_dir}",
            str(proto.relative_to(ROOT)),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto.name}")


if __name__ == "__main__":
    generate()
    sys.stdout.write(f"generated modules for {len(PROTO_FILES)} proto files\n")
