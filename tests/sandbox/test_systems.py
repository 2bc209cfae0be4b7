"""``sandbox.systems.start_all``: the five simulators on free loopback ports."""

from __future__ import annotations

import aiohttp

from sandbox.systems import start_all


async def test_start_all_serves_five_simulators_and_sums_their_duplicates() -> None:
    systems = await start_all()
    try:
        urls = systems.urls()
        assert list(urls) == ["shopify", "amazon", "shipbob", "odoo", "easypost"]
        assert len(set(urls.values())) == 5 and all(u.startswith("http://127.0.0.1:") for u in urls.values())
        async with aiohttp.ClientSession() as http:
            for name, url in urls.items():
                async with http.get(f"{url}/_sandbox/stats") as resp:
                    assert resp.status == 200 and (await resp.json())["system"] == name
        systems.shipbob.state.recorder.side_effect("shipbob.order", "R1")
        systems.shipbob.state.recorder.side_effect("shipbob.order", "R1")
        systems.odoo.state.recorder.duplicate("odoo.sale_order", "client_order_ref X")
        assert systems.duplicate_side_effects() == 2
        systems.easypost.state.recorder.duplicate("easypost.label", "shipment shp_1 bought again", refused=True)
        assert systems.refused_duplicates() == 1 and systems.duplicate_side_effects() == 2
        assert systems.report()["shipbob"]["duplicate_side_effects"] == 1
        assert await systems.settle(1)
    finally:
        await systems.stop()
    async with aiohttp.ClientSession() as http:
        try:
            await http.get(f"{urls['shopify']}/_sandbox/stats")
        except aiohttp.ClientConnectionError:
            pass
        else:
            raise AssertionError("the simulator still answers after stop()")
