"""The generated contract files: committed, in step with the models, and complete."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from schemas import export
from schemas.topics import TOPICS

ROOT = Path(__file__).resolve().parents[3]


def test_committed_files_match_the_models() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "schemas.export", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_names_the_drifted_file(tmp_path: Path, capsys: object) -> None:
    root = tmp_path / "schemas"
    shutil.copytree(ROOT / "schemas" / "jsonschema", root / "jsonschema")
    shutil.copy(ROOT / "schemas" / "asyncapi.yaml", root / "asyncapi.yaml")
    assert export.main(["--check", "--root", str(root)]) == 0

    scores = root / "jsonschema" / "scores.v1.json"
    scores.write_text(scores.read_text().replace("churn_risk", "churn"))
    (root / "jsonschema" / "old.v0.json").write_text("{}")
    assert export.drifted(root) == ["jsonschema/old.v0.json", "jsonschema/scores.v1.json"]
    assert export.main(["--check", "--root", str(root)]) == 1

    assert export.main(["--root", str(root)]) == 0
    assert export.drifted(root) == []
    assert not (root / "jsonschema" / "old.v0.json").exists()


def test_output_is_deterministic() -> None:
    assert export.expected_files() == export.expected_files()


def test_asyncapi_lists_every_topic() -> None:
    doc = yaml.safe_load((ROOT / "schemas" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {channel["address"] for channel in doc["channels"].values()}
    assert addresses == {spec.name for spec in TOPICS}
    for spec in TOPICS:
        channel = doc["channels"][export.channel_id(spec.name)]
        kafka = channel["bindings"]["kafka"]
        assert kafka["partitions"] == spec.partitions
        assert kafka["topicConfiguration"]["cleanup.policy"] == [spec.cleanup_policy]
        for message in channel["messages"].values():
            assert message["bindings"]["kafka"]["key"]["description"]
            ref = message["payload"].get("$ref")
            if ref is not None:
                assert (ROOT / "schemas" / ref).is_file()
        operation = doc["operations"][f"send_{export.channel_id(spec.name)}"]
        assert operation["action"] == "send"
        assert operation["channel"] == {"$ref": f"#/channels/{export.channel_id(spec.name)}"}


def test_compacted_topics_document_tombstones() -> None:
    doc = export.asyncapi()
    for spec in TOPICS:
        messages = doc["channels"][export.channel_id(spec.name)]["messages"]
        assert ("tombstone" in messages) == (spec.cleanup_policy == "compact")
