"""The engine catalogue fits settings to the broker, and the topic plan carries them."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.kafka.engines import ENGINES, engine, engine_env, fit_settings
from services.common.kafka.kafka_dist import kafka_version
from services.common.kafka.kafka_node import KafkaNode, node_config
from services.common.kafka.topic_admin import plan
from services.common.settings import KafkaSettings


def test_tansu_turns_the_idempotent_producer_off_kafka_keeps_it() -> None:
    base = KafkaSettings()
    assert base.idempotent_producer is None  # detected by a service when nothing says
    assert fit_settings(base, "tansu").idempotent_producer is False
    assert fit_settings(base, "kafka").idempotent_producer is True
    assert engine_env("tansu") == {"KOPRU_KAFKA__IDEMPOTENT_PRODUCER": "false"}
    # A setting turned off by the operator stays off on any engine.
    off = base.model_copy(update={"idempotent_producer": False})
    assert fit_settings(off, "kafka").idempotent_producer is False


def test_three_kafka_nodes_replicate_every_topic_with_two_in_sync() -> None:
    three = fit_settings(KafkaSettings(), "kafka", nodes=3)
    assert (three.replication_factor, three.min_insync_replicas) == (3, 2)
    topics = plan(three)
    assert topics and all(t.config["min.insync.replicas"] == "2" for t in topics)
    one = fit_settings(KafkaSettings(), "kafka", nodes=1)
    assert (one.replication_factor, one.min_insync_replicas) == (1, None)
    assert all("min.insync.replicas" not in t.config for t in plan(one))


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown broker engine 'redpanda'"):
        engine("redpanda")
    assert set(ENGINES) == {"tansu", "kafka"}


def test_node_config_fits_one_or_three_nodes() -> None:
    node = KafkaNode(2, 20001, 20002, Path("/tmp/n2"))
    one = node_config(node, "2@127.0.0.1:20002", 1, "127.0.0.1")
    three = node_config(node, "1@h:1,2@h:2,3@h:3", 3, "127.0.0.1")
    assert one["offsets.topic.replication.factor"] == "1" and one["min.insync.replicas"] == "1"
    assert three["offsets.topic.replication.factor"] == "3"
    assert three["transaction.state.log.min.isr"] == "2" and three["min.insync.replicas"] == "2"
    for cfg in (one, three):
        assert cfg["auto.create.topics.enable"] == "false"
        assert cfg["group.initial.rebalance.delay.ms"] == "0"
        assert cfg["node.id"] == "2" and cfg["listeners"].startswith("PLAINTEXT://127.0.0.1:20001")


def test_the_pom_pins_a_kafka_4() -> None:
    assert kafka_version().split(".")[0] == "4"
