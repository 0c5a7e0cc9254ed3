"""Write the contract files: JSON Schema per payload and the AsyncAPI document of every topic.

    python -m schemas.export           # rewrite schemas/jsonschema/*.json and schemas/asyncapi.yaml
    python -m schemas.export --check   # exit 1, naming each file that differs from the models

Output is deterministic (sorted keys, fixed ordering) so a diff shows a real contract change.
"""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import core_schema

from schemas.catalog import PAYLOADS
from schemas.journey_v1 import Journey
from schemas.parse import BatchRequest, SegmentEvent
from schemas.topics import TOPICS, TopicSpec

ROOT = Path(__file__).resolve().parent
SCHEMA_DIR = "jsonschema"
ASYNCAPI_FILE = "asyncapi.yaml"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
KAFKA_BINDING_VERSION = "0.5.0"
# topicConfiguration keys the AsyncAPI Kafka binding defines; the full config goes in an x- field.
_BINDING_TOPIC_CONFIG = ("cleanup.policy", "retention.ms", "delete.retention.ms")


class _Generator(GenerateJsonSchema):
    # Field titles pydantic derives ("Userid") add noise; model titles and descriptions stay.
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        # Ids accept numbers (kept as strings); say so where the schema describes input.
        base = super().str_schema(schema)
        if self.mode == "validation" and schema.get("coerce_numbers_to_str"):
            return {"anyOf": [base, {"type": "number"}]}
        return base


def json_schema(model: Any, *, title: str, mode: JsonSchemaMode) -> dict[str, Any]:
    schema = TypeAdapter(model).json_schema(mode=mode, schema_generator=_Generator)
    return {"$schema": JSON_SCHEMA_DIALECT, "title": title, **schema}


def _json_text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def json_schemas() -> dict[str, str]:
    """Relative path -> file text of every JSON Schema: topic payloads, Segment bodies, journeys."""
    files: dict[str, str] = {}
    for payload in PAYLOADS.values():
        # Topic payloads are written by Retain: describe what producers serialise.
        schema = json_schema(payload.model, title=payload.message, mode="serialization")
        files[f"{SCHEMA_DIR}/{payload.schema_file}"] = _json_text(schema)
    # Request bodies are written by SDKs: describe what ingest accepts.
    files[f"{SCHEMA_DIR}/segment.event.json"] = _json_text(
        json_schema(SegmentEvent, title="SegmentEvent", mode="validation")
    )
    files[f"{SCHEMA_DIR}/segment.batch.json"] = _json_text(
        json_schema(BatchRequest, title="BatchRequest", mode="validation")
    )
    # Journey files are written by hand: describe what the notify service loads, for editors.
    files[f"{SCHEMA_DIR}/journey.v1.json"] = _json_text(
        json_schema(Journey, title="Journey", mode="validation")
    )
    return dict(sorted(files.items()))


def channel_id(topic: str) -> str:
    return topic.replace(".", "_")


def _message_id(name: str) -> str:
    return name[0].lower() + name[1:]


def _key_schema(spec: TopicSpec) -> dict[str, Any]:
    if spec.key == "none":
        return {"type": "null", "description": "No key: records spread over partitions."}
    return {"type": "string", "description": spec.key}


def _channel(spec: TopicSpec) -> dict[str, Any]:
    payload = PAYLOADS[spec.name]
    message_id = _message_id(payload.message)
    messages: dict[str, Any] = {
        message_id: {
            "name": payload.message,
            "title": payload.message,
            "summary": payload.summary,
            "contentType": "application/json",
            "payload": {"$ref": f"{SCHEMA_DIR}/{payload.schema_file}"},
            "bindings": {
                "kafka": {"key": _key_schema(spec), "bindingVersion": KAFKA_BINDING_VERSION}
            },
        }
    }
    if spec.cleanup_policy == "compact":
        messages["tombstone"] = {
            "name": "Tombstone",
            "title": "Tombstone",
            "summary": "A null value: the customer was erased; compaction removes the key.",
            "payload": {"type": "null"},
            "bindings": {
                "kafka": {"key": _key_schema(spec), "bindingVersion": KAFKA_BINDING_VERSION}
            },
        }
    config = spec.config()
    topic_config: dict[str, Any] = {"cleanup.policy": [spec.cleanup_policy]}
    for name in _BINDING_TOPIC_CONFIG[1:]:
        if name in config:
            topic_config[name] = int(config[name])
    return {
        "address": spec.name,
        "title": spec.name,
        "description": f"{spec.description} Key: {spec.key}. Produced by {payload.producers}.",
        "messages": messages,
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": topic_config,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
        "x-kafka-topic-config": dict(sorted(config.items())),
    }


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document: a channel per topic in specs.py, a send operation for each."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS:
        cid = channel_id(spec.name)
        channel = _channel(spec)
        channels[cid] = channel
        operations[f"send_{cid}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": f"{PAYLOADS[spec.name].producers} publishes to {spec.name}.",
            "messages": [
                {"$ref": f"#/channels/{cid}/messages/{mid}"} for mid in channel["messages"]
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Retain topics",
            "version": "1.0.0",
            "description": (
                "Every Kafka topic of Retain, its key and its payload. Payloads are JSON; their "
                "JSON Schemas are generated from the models in schemas/. A breaking change is a "
                "new topic version."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
    }


def asyncapi_text() -> str:
    return yaml.safe_dump(asyncapi(), sort_keys=True, allow_unicode=True, width=100)


def expected_files() -> dict[str, str]:
    """Relative path (under schemas/) -> the text the models say it should have."""
    return {**json_schemas(), ASYNCAPI_FILE: asyncapi_text()}


def drifted(root: Path) -> list[str]:
    """Files under `root` that differ from the models, are missing, or are no longer generated."""
    expected = expected_files()
    out = [
        path
        for path, text in expected.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]
    schema_dir = root / SCHEMA_DIR
    if schema_dir.is_dir():
        for stale in sorted(schema_dir.glob("*.json")):
            relative = f"{SCHEMA_DIR}/{stale.name}"
            if relative not in expected:
                out.append(relative)
    return sorted(out)


def write(root: Path) -> list[str]:
    """Write every contract file under `root`, remove stale schemas; return the changed paths."""
    changed = drifted(root)
    expected = expected_files()
    for path in changed:
        target = root / path
        if path in expected:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(expected[path], encoding="utf-8")
        else:
            target.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files drifted")
    parser.add_argument("--root", type=Path, default=ROOT, help="directory to write or check")
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        stale = drifted(root)
        for path in stale:
            print(f"{root / path} differs from the models", file=sys.stderr)
        if stale:
            print("run: python -m schemas.export", file=sys.stderr)
            return 1
        return 0
    for path in write(root):
        print(f"wrote {root / path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
