"""Settings: defaults, the URL (schemes, credentials, TLS, database), limits, and secrets kept out of messages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from qts_data.config.secrets import mask, public_view
from qts_data_redis_cache import RedisCacheSettings
from qts_data_redis_cache.settings import Endpoint, parse_node, parse_url

SECRET = "s3cr3t-Pa55word"


def test_defaults_match_the_seeds() -> None:
    s = RedisCacheSettings()
    assert s.url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert (s.pool_min, s.pool_max, s.pool_timeout_ms) == (10, 50, 1000)
    assert (s.socket_timeout_ms, s.connect_timeout_ms) == (100, 100)
    assert s.prefix == ""
    assert s.cluster is False
    assert s.endpoint() == Endpoint(host="127.0.0.1", port=6379, db=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", Endpoint("localhost", 6379)),
        ("redis://10.0.0.5:7000/3", Endpoint("10.0.0.5", 7000, db=3)),
        ("redis://:pw@h/1", Endpoint("h", 6379, db=1, password="pw")),
        ("redis://alice:pw@h:6380", Endpoint("h", 6380, username="alice", password="pw")),
        ("redis://alice@h", Endpoint("h", 6379, username="alice")),
        ("rediss://h:6390/0", Endpoint("h", 6390, tls=True)),
        ("REDISS://h", Endpoint("h", 6379, tls=True)),
        ("redis://[::1]:6379/0", Endpoint("::1", 6379)),
        ("redis://u%40x:p%2Fw%3A@h", Endpoint("h", 6379, username="u@x", password="p/w:")),
    ],
)
def test_url_forms(url: str, expected: Endpoint) -> None:
    assert parse_url(url) == expected
    assert RedisCacheSettings(url=url).endpoint() == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h:6379", "the scheme http:// is not supported"),
        ("h:6379", "url: not a URL"),
        ("redis://", "no host"),
        ("redis://h:port", "port is not a number"),
        ("redis://h:6379/zero", "database number"),
        ("redis://h:6379/0?ssl_cert_reqs=none&db=2", "query options (db, ssl_cert_reqs)"),
        ("unix:///tmp/redis.sock", "the scheme unix://"),
    ],
)
def test_bad_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RedisCacheSettings(url=url)
    assert message in str(caught.value)


def test_username_and_password_settings_take_precedence_over_the_url() -> None:
    s = RedisCacheSettings(url="redis://bob:old@h/0", username="alice", password=SECRET)
    endpoint = s.endpoint()
    assert (endpoint.username, endpoint.password) == ("alice", SECRET)
    assert endpoint.masked_url == "redis://alice:***@h:6379/0"


def test_tls_options_need_rediss() -> None:
    with pytest.raises(ValidationError, match=r"ssl_ca_certs: TLS options need a rediss:// url"):
        RedisCacheSettings(url="redis://h", ssl_ca_certs="/ca.pem")
    with pytest.raises(ValidationError, match="ssl_cert_reqs"):
        RedisCacheSettings(url="redis://h", ssl_cert_reqs="none", ssl_check_hostname=False)
    s = RedisCacheSettings(
        url="rediss://h", ssl_ca_certs="/ca.pem", ssl_certfile="/c.pem", ssl_keyfile="/k.pem"
    )
    assert s.endpoint().tls
    assert RedisCacheSettings(url="rediss://h", ssl_cert_reqs="none").endpoint().tls
    with pytest.raises(ValidationError, match="ssl_cert_reqs"):
        RedisCacheSettings(url="rediss://h", ssl_cert_reqs="maybe")


def test_limits() -> None:
    with pytest.raises(ValidationError, match=r"pool_min \(60\) is larger than pool_max \(50\)"):
        RedisCacheSettings(pool_min=60)
    for field in ("pool_max", "pool_timeout_ms", "socket_timeout_ms", "connect_timeout_ms"):
        with pytest.raises(ValidationError, match=field):
            RedisCacheSettings.model_validate({field: 0})
    with pytest.raises(ValidationError, match="pool_min"):
        RedisCacheSettings(pool_min=-1)
    with pytest.raises(ValidationError, match="health_check_interval_s"):
        RedisCacheSettings(health_check_interval_s=0)
    assert RedisCacheSettings(pool_min=0, pool_max=1).pool_max == 1


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="socket_timeout"):
        RedisCacheSettings.model_validate({"socket_timeout": 5})


def test_cluster_settings() -> None:
    s = RedisCacheSettings(
        url="redis://10.0.0.1:7000",
        cluster=True,
        cluster_nodes=["10.0.0.2:7001", "[::1]:7002", "10.0.0.1:7000"],
    )
    assert s.startup_nodes() == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    with pytest.raises(ValidationError, match="cluster_nodes: only for a cluster"):
        RedisCacheSettings(cluster_nodes=["h:1"])
    with pytest.raises(ValidationError, match="read_from_replicas: only for a cluster"):
        RedisCacheSettings(read_from_replicas=True)
    with pytest.raises(ValidationError, match="only database 0"):
        RedisCacheSettings(url="redis://h/2", cluster=True)
    with pytest.raises(ValidationError, match="'h' is not host:port"):
        RedisCacheSettings(cluster=True, cluster_nodes=["h"])
    assert parse_node(" host-1.example:6379 ") == ("host-1.example", 6379)


@pytest.mark.parametrize(
    "values",
    [
        {"url": f"redis://user:{SECRET}@h:6379/0", "pool_min": 99},
        {"url": f"redis://user:{SECRET}@h:6379/nope"},
        {"url": f"http://user:{SECRET}@h:6379/0"},
        {"url": f"redis://user:{SECRET}@h:6379/0?x=1"},
        {"url": f"redis://user:{SECRET}@h:6379/0", "ssl_ca_certs": "/ca.pem"},
        {"url": f"redis://user:{SECRET}@h:port"},
        {"url": f"redis://:{SECRET}@h", "socket_timeout_ms": "soon"},
    ],
)
def test_a_password_in_the_url_never_appears_in_validation_errors(
    values: dict[str, object],
) -> None:
    with pytest.raises(ValidationError) as caught:
        RedisCacheSettings.model_validate(values)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    for error in caught.value.errors():
        assert SECRET not in error["msg"]


def test_secrets_are_masked_in_reprs_and_public_views() -> None:
    s = RedisCacheSettings(url=f"redis://alice:{SECRET}@h:6379/0", password=SECRET + "2")
    assert SECRET not in repr(s)
    assert SECRET not in str(s.endpoint())
    assert s.endpoint().masked_url == "redis://alice:***@h:6379/0"
    view = public_view(s)
    assert view["url"] == "redis://alice:***@h:6379/0"
    assert view["password"] == "***"
    assert SECRET not in mask(str(view))
