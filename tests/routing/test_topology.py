"""REDIS_URL's topologies: what each URL form means, and the combinations that stop mjgate."""

from __future__ import annotations

import pytest

from gateway.settings import Settings, SettingsError
from routing.resolvers import key_slot
from routing.topology import Node, Topology


def test_standalone_urls_are_kept_as_given() -> None:
    for url in (
        "redis://localhost:6380/2",
        "rediss://:pw@localhost:6380",
        "unix:///tmp/r.sock?db=1",
    ):
        topology = Topology.parse(url)
        assert (topology.kind, topology.url) == ("standalone", url)
    assert Topology.parse("rediss://localhost").tls
    assert "pw" not in str(Topology.parse("rediss://:pw@localhost:6380"))


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    topology = Topology.parse(
        "redis+sentinel://app:s3cret@127.0.0.1:26379,localhost:26380,[::1]/mymaster/2",
        sentinel_password="sentinel-pw",
    )
    assert topology.kind == "sentinel"
    assert topology.nodes == (
        Node("127.0.0.1", 26379),
        Node("localhost", 26380),
        Node("::1", 26379),
    )
    assert (topology.service, topology.db) == ("mymaster", 2)
    assert (topology.username, topology.password) == ("app", "s3cret")
    assert topology.sentinel_password == "sentinel-pw" and not topology.tls
    assert "s3cret" not in str(topology) and "sentinel-pw" not in str(topology)


def test_a_cluster_url_lists_seed_nodes_and_may_carry_tls_options() -> None:
    topology = Topology.parse("rediss+cluster://:pw@127.0.0.1:7000,localhost?ssl_cert_reqs=none")
    assert topology.kind == "cluster" and topology.tls
    assert topology.nodes == (Node("127.0.0.1", 7000), Node("localhost", 6379))
    assert topology.password == "pw" and topology.username is None
    assert topology.tls_options == {"ssl_cert_reqs": "none"}


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL", "redis+sentinel://"),
        ({"REDIS_URL": "redis+sentinel://localhost:26379"}, "REDIS_URL", "<service name>"),
        ({"REDIS_URL": "redis+sentinel://localhost/m/x"}, "REDIS_URL", "not a number"),
        ({"REDIS_URL": "redis+cluster://localhost:7000/3"}, "REDIS_URL", "only database 0"),
        ({"REDIS_URL": "redis+cluster://"}, "REDIS_URL", "names no host"),
        ({"REDIS_URL": "redis+cluster://localhost:notaport"}, "REDIS_URL", "not host:port"),
        ({"REDIS_URL": "redis+cluster://localhost?ssl_cert_reqs=none"}, "REDIS_URL", "rediss+"),
        (
            {"REDIS_URL": "rediss+cluster://localhost?sslmode=x"},
            "REDIS_URL",
            "unknown URL parameter",
        ),
        (
            {"REDIS_URL": "redis://localhost", "MJGATE_SENTINEL_PASSWORD": "pw"},
            "MJGATE_SENTINEL_PASSWORD",
            "redis+sentinel://",
        ),
        ({"MJGATE_SENTINEL_USERNAME": "u"}, "MJGATE_SENTINEL_USERNAME", "redis+sentinel://"),
    ],
)
def test_invalid_combinations_stop_with_the_setting_named(
    env: dict[str, str], named: str, says: str
) -> None:
    with pytest.raises(SettingsError, match=named) as raised:
        Settings.from_env(env)
    assert says in str(raised.value)


def test_sentinel_credentials_are_settings() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis+sentinel://localhost,127.0.0.1/mymaster",
            "MJGATE_SENTINEL_USERNAME": "watcher",
            "MJGATE_SENTINEL_PASSWORD": "pw",
        }
    )
    assert (settings.sentinel_username, settings.sentinel_password) == ("watcher", "pw")


def test_key_slots_follow_hash_tags_as_redis_computes_them() -> None:
    # values from CLUSTER KEYSLOT on Redis 7
    assert key_slot(b"foo") == 12182
    assert key_slot(b"{user1000}.following") == key_slot(b"user1000")
    assert key_slot(b"foo{}{bar}") == key_slot(b"foo{}{bar}")  # empty tag: the whole key
    assert key_slot(b"mjgate:{pool}:meta") == key_slot(b"pool")
