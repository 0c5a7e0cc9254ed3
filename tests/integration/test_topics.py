"""Topics as code: every topic in schemas/topics/specs.py exists with its settings."""

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from schemas.topics import TOPICS
from services.runtime.kafka import ensure_topics
from services.runtime.settings import ServiceSettings

pytestmark = pytest.mark.integration


async def test_topics_are_created_once_with_their_configuration(settings: ServiceSettings) -> None:
    await ensure_topics(settings)
    assert await ensure_topics(settings) == []  # idempotent: nothing left to create

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([s.name for s in TOPICS])}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in TOPICS]
        )
    finally:
        await admin.close()

    configs = {}
    for response in responses:
        for resource in response.resources:
            # (error_code, error_message, resource_type, resource_name, config_entries)
            configs[resource[3]] = {entry[0]: entry[1] for entry in resource[4]}
    for spec in TOPICS:
        assert len(described[spec.name]["partitions"]) == spec.partitions, spec.name
        assert configs[spec.name]["cleanup.policy"] == spec.cleanup_policy, spec.name
        assert configs[spec.name]["retention.ms"] == spec.config()["retention.ms"], spec.name
