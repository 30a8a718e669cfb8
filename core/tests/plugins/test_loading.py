"""Plugin loading: each entry point on its own, failures recorded, strict mode, allow/block lists."""

from __future__ import annotations

import pytest

from qts_data.errors import PluginError
from qts_data.plugins.manager import PluginHost
from qts_data.plugins.registry import ComponentKind
from qts_data.testing import PluginSite

GOOD = """
from qts_data.plugins import hookimpl, Settings

class GoodSettings(Settings):
    size: int = 1

def make(settings, ctx):
    raise AssertionError("factories are not called at discovery")

@hookimpl
def qts_data_cache_clients(register):
    register("{name}", make, settings=GoodSettings, description="a test cache")
"""


def host_for(site: PluginSite, **environ: str) -> PluginHost:
    return PluginHost(environ=environ, entry_points=site.entry_points())


def good(name: str) -> str:
    return GOOD.replace("{name}", name)


@pytest.fixture
def site(plugin_site: PluginSite, monkeypatch: pytest.MonkeyPatch) -> PluginSite:
    monkeypatch.syspath_prepend(str(plugin_site.path))
    return plugin_site


def test_good_plugin_registers_its_components(site: PluginSite) -> None:
    site.add("alpha", good("alpha"))
    host = host_for(site).load()
    record = host.record("alpha")
    assert record is not None and record.status == "loaded"
    assert record.distribution == "qts-data-test-alpha" and record.version == "0.1.0"
    assert record.components == [(ComponentKind.CACHE, "alpha")]
    spec = host.spec(ComponentKind.CACHE, "alpha")
    assert spec.plugin == "alpha" and spec.description == "a test cache"


def test_plugin_that_fails_to_import_is_recorded_and_others_load(site: PluginSite) -> None:
    site.add("broken", "import module_that_does_not_exist\n")
    site.add("zeta", good("zeta"))
    host = host_for(site).load()
    broken = host.record("broken")
    assert broken is not None and broken.status == "failed"
    assert "module_that_does_not_exist" in (broken.error or "")
    assert host.spec(ComponentKind.CACHE, "zeta").plugin == "zeta"


def test_plugin_whose_hook_raises_is_recorded_without_partial_registrations(
    site: PluginSite,
) -> None:
    site.add(
        "raiser",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_adapters(register):
            register("raiser", lambda s, c: None)
            raise RuntimeError("boom in hook")
        """,
    )
    host = host_for(site).load()
    record = host.record("raiser")
    assert record is not None and record.status == "failed"
    assert "qts_data_adapters raised RuntimeError: boom in hook" in (record.error or "")
    with pytest.raises(PluginError, match="installed but failed"):
        host.spec(ComponentKind.ADAPTER, "raiser")


def test_plugin_for_an_incompatible_core_is_not_imported(site: PluginSite) -> None:
    site.add("future", "raise SystemExit('must not be imported')\n", requires=("qts-data>=9,<10",))
    host = host_for(site).load()
    record = host.record("future")
    assert record is not None and record.status == "failed"
    assert "requires qts-data<10,>=9" in (record.error or "") or "requires qts-data>=9,<10" in (
        record.error or ""
    )
    assert "installed qts-data 0.1.0" in (record.error or "")


def test_duplicate_component_name_fails_the_later_plugin_only(site: PluginSite) -> None:
    site.add("first", good("first"))
    site.add(
        "second",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_adapters(register):
            register("cached", lambda s, c: None)
        """,
    )
    host = host_for(site).load()
    second = host.record("second")
    assert second is not None and second.status == "failed"
    assert "must be the plugin's name" in (second.error or "")
    assert host.spec(ComponentKind.ADAPTER, "cached").plugin == "core"


def test_duplicate_plugin_name_from_two_distributions(site: PluginSite) -> None:
    site.add("twin", good("twin"), distribution="qts-data-twin-a")
    site.add("twin", good("twin"), distribution="qts-data-twin-b", module="qts_test_plugin_twin_b")
    host = host_for(site).load()
    records = [r for r in host.records if r.name == "twin"]
    assert [r.status for r in records] == ["loaded", "failed"]
    assert "duplicate plugin name 'twin'" in (records[1].error or "")
    assert host.spec(ComponentKind.CACHE, "twin").plugin == "twin"


def test_misspelled_hook_name_fails_loudly_with_a_suggestion(site: PluginSite) -> None:
    site.add(
        "typo",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_adaptors(register):
            pass
        """,
    )
    record = host_for(site).load().record("typo")
    assert record is not None and record.status == "failed"
    assert "unknown hook 'qts_data_adaptors'" in (record.error or "")
    assert "did you mean qts_data_adapters" in (record.error or "")


def test_misspelled_hook_argument_fails_loudly(site: PluginSite) -> None:
    site.add(
        "badarg",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_adapters(registr):
            pass
        """,
    )
    record = host_for(site).load().record("badarg")
    assert record is not None and record.status == "failed"
    assert "registr" in (record.error or "")


def test_hook_without_hookimpl_marker_is_reported(site: PluginSite) -> None:
    site.add("unmarked", "def qts_data_adapters(register):\n    pass\n")
    record = host_for(site).load().record("unmarked")
    assert record is not None and record.status == "failed"
    assert "not marked with @hookimpl" in (record.error or "")


def test_component_named_after_another_plugin_is_refused(site: PluginSite) -> None:
    site.add(
        "squatter",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_cache_clients(register):
            register("redis_cache", lambda s, c: None)
        """,
    )
    record = host_for(site).load().record("squatter")
    assert record is not None and record.status == "failed"
    assert "'redis_cache' must be the plugin's name 'squatter'" in (record.error or "")


def test_variant_names_are_allowed(site: PluginSite) -> None:
    site.add(
        "multi",
        """
        from qts_data.plugins import hookimpl
        @hookimpl
        def qts_data_event_sinks(register):
            register("multi", lambda s, c: None)
            register("multi.streams", lambda s, c: None)
        """,
    )
    host = host_for(site).load()
    assert {s.name for s in host.specs(ComponentKind.SINK)} >= {"multi", "multi.streams", "logging"}


def test_strict_mode_turns_a_failure_into_an_error(site: PluginSite) -> None:
    site.add("broken", "raise ImportError('cannot import backend')\n")
    site.add("fine", good("fine"))
    with pytest.raises(
        PluginError, match=r"QTS_DATA_STRICT_PLUGINS is set and 1 plugin\(s\) failed.*broken"
    ):
        host_for(site, QTS_DATA_STRICT_PLUGINS="1").load()


def test_block_list_skips_a_plugin_by_name(site: PluginSite) -> None:
    site.add("alpha", "raise SystemExit('blocked plugins are not imported')\n")
    site.add("beta", good("beta"))
    host = host_for(site, QTS_DATA_DISABLE_PLUGINS="alpha, other").load()
    alpha = host.record("alpha")
    assert alpha is not None and alpha.status == "blocked"
    with pytest.raises(PluginError, match="installed but blocked"):
        host.spec(ComponentKind.CACHE, "alpha")


def test_allow_list_loads_only_the_named_plugins(site: PluginSite) -> None:
    site.add("alpha", good("alpha"))
    site.add("beta", "raise SystemExit('not allowed plugins are not imported')\n")
    host = host_for(site, QTS_DATA_PLUGINS="alpha").load()
    assert [r.status for r in host.records if not r.builtin] == ["loaded", "not-allowed"]


def test_empty_allow_list_means_builtins_only(site: PluginSite) -> None:
    site.add("alpha", good("alpha"))
    host = host_for(site, QTS_DATA_PLUGINS="").load()
    assert [(r.name, r.status) for r in host.records] == [
        ("core", "loaded"),
        ("alpha", "not-allowed"),
    ]
    assert {s.name for s in host.specs(ComponentKind.ADAPTER)} == {"cached", "hybrid", "tiered"}


def test_core_cannot_be_blocked(site: PluginSite) -> None:
    with pytest.raises(PluginError, match="'core' cannot be disabled"):
        host_for(site, QTS_DATA_DISABLE_PLUGINS="core").load()


def test_unknown_component_names_the_package_to_install(site: PluginSite) -> None:
    host = host_for(site).load()
    with pytest.raises(PluginError) as info:
        host.spec(ComponentKind.CACHE, "redis_cache")
    message = str(info.value)
    assert "pip install qts-data-redis-cache" in message
    assert "Available cache clients:" in message


def test_unknown_third_party_name_suggests_a_close_one(site: PluginSite) -> None:
    host = host_for(site).load()
    with pytest.raises(PluginError, match=r"did you mean 'cached'"):
        host.spec(ComponentKind.ADAPTER, "cachd")


def test_invalid_plugin_name_is_refused(site: PluginSite) -> None:
    site.add("Bad-Name", good("Bad-Name"))
    record = host_for(site).load().record("Bad-Name")
    assert record is not None and record.status == "failed"
    assert "invalid plugin name" in (record.error or "")


def test_hooks_are_called_once_at_discovery(site: PluginSite) -> None:
    site.add(
        "counted",
        """
        from qts_data.plugins import hookimpl
        CALLS = []
        @hookimpl
        def qts_data_cache_clients(register):
            CALLS.append(1)
            register("counted", lambda s, c: None)
        """,
    )
    host = host_for(site)
    for _ in range(3):
        host.load()
        host.spec(ComponentKind.CACHE, "counted")
    import qts_test_plugin_counted  # type: ignore[import-not-found]

    assert qts_test_plugin_counted.CALLS == [1]
