"""The checked-in generated modules match the .proto files they came from."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from protos.generate import PROTO_FILES, generate

pytest.importorskip("grpc_tools.protoc")

ROOT = Path(__file__).resolve().parent.parent
STALE_HINT = "run `python -m protos.generate`"
_SERIALIZED_FILE = re.compile(r"AddSerializedFile\((b'.*?')\)\n", re.DOTALL)


@pytest.fixture(scope="module")
def fresh_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The modules protoc generates now, in a temporary directory."""
    out = tmp_path_factory.mktemp("generated")
    generate(out)
    return out / "protos"


def fresh_descriptor(fresh_dir: Path, stem: str) -> descriptor_pb2.FileDescriptorProto:
    source = (fresh_dir / f"{stem}_pb2.py").read_text()
    match = _SERIALIZED_FILE.search(source)
    assert match, f"no serialized descriptor found in freshly generated {stem}_pb2.py"
    return descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(match.group(1)))


def test_the_demo_protos_are_there():
    assert {p.name for p in PROTO_FILES} >= {"catalog.proto", "inventory.proto"}


@pytest.mark.parametrize("proto", PROTO_FILES, ids=lambda p: p.name)
def test_pb2_module_is_not_stale(proto: Path, fresh_dir: Path):
    module = importlib.import_module(f"protos.{proto.stem}_pb2")
    checked_in = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    assert checked_in == fresh_descriptor(fresh_dir, proto.stem), (
        f"protos/{proto.stem}_pb2.py is stale against protos/{proto.name}; {STALE_HINT}"
    )


@pytest.mark.parametrize("proto", PROTO_FILES, ids=lambda p: p.name)
def test_grpc_module_has_every_method(proto: Path, fresh_dir: Path):
    fresh = fresh_descriptor(fresh_dir, proto.stem)
    source = (ROOT / "protos" / f"{proto.stem}_pb2_grpc.py").read_text()
    for service in fresh.service:
        for method in service.method:
            path = f"/{fresh.package}.{service.name}/{method.name}"
            assert f"'{path}'" in source, (
                f"protos/{proto.stem}_pb2_grpc.py lacks {path}; {STALE_HINT}"
            )
