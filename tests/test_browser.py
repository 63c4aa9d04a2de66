"""Every page the service serves works in a real browser with no internet (issue 15).

`suqiu serve` runs on localhost with the shipped demo appeals; headless Chromium (Debian's
``chromium``, driven by Playwright) opens the API docs, signs in to the dashboard through
its form, follows the weeks page to one digest, and for each page checks the key
elements, that nothing was fetched from outside localhost (every other request is
aborted by route interception, so "no network" is enforced, not assumed), that the
console shows no error, and that every character of the page's text has a glyph: in the
font the page renders with (as fontconfig resolves its CSS ``font-family``) or in a
font Chromium can fall back to — otherwise it would show as a missing-glyph box.
Screenshots go to ``var/test-artifacts/`` (not committed).
"""
import math
import shutil
import subprocess
import time
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "var" / "test-artifacts"
DIGEST_WEEK = "2025-12-28"  # the last whole week of the demo appeals

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")


@lru_cache(maxsize=None)
def _font_of(family_list: str) -> tuple[str, int]:
    """(file, face index) fontconfig picks for a CSS font-family list: the first family it
    has, else its match for the generic family at the end."""
    families = [f.strip().strip("\"'") for f in family_list.split(",") if f.strip()]
    for family in families:
        out = subprocess.run(["fc-match", "-f", "%{family}|%{file}|%{index}", f"{family}:lang=zh-cn"],
                             capture_output=True, text=True, check=True).stdout
        names, file, index = out.rsplit("|", 2)
        if family.lower() in {n.lower() for n in names.split(",")} or family == families[-1]:
            return file, int(index or 0)
    raise AssertionError(f"fontconfig matches no font for {family_list!r}")


@lru_cache(maxsize=None)
def _cmap(file: str, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    return frozenset(TTFont(file, fontNumber=index, lazy=True).getBestCmap())


@lru_cache(maxsize=None)
def _any_font_has(char: str) -> bool:
    out = subprocess.run(["fc-list", f":charset={ord(char):x}", "file"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def missing_glyphs(page) -> list[str]:
    """Characters of the page's visible text that no font can draw (each would be a box):
    not in the body's font, nor in any installed font Chromium could fall back to."""
    text, family = page.evaluate("[document.body.innerText, getComputedStyle(document.body).fontFamily]")
    primary = _cmap(*_font_of(family))
    chars = {c for c in text if not c.isspace() and ord(c) >= 0x20}
    return sorted(c for c in chars if c == "\ufffd" or ord(c) not in primary and not _any_font_has(c))


@pytest.fixture(scope="module")
def server(tmp_path_factory, demo_bundle, demo_frame):
    """`suqiu serve` on localhost with the demo appeals; (base URL, analyst key)."""
    from sqlalchemy.orm import sessionmaker

    from service.auth import create_key
    from service.bench import start_server
    from service.db import make_engine

    if not shutil.which("fc-match"):
        pytest.skip("fontconfig (fc-match) is not installed: the glyph check needs it")
    url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'suqiu.db'}"
    proc, base, admin = start_server(url, demo_bundle.path)
    try:
        engine = make_engine(url)
        with sessionmaker(engine)() as s:
            analyst = create_key(s, role="analyst", name="browser-analyst")
        engine.dispose()
        rows = [{k: v for k, v in r.items() if isinstance(v, str) or v is not None and not
                 (isinstance(v, float) and math.isnan(v))}
                for r in demo_frame[["id", "time", "title", "text", "district", "user", "channel"]].to_dict("records")]
        for i in range(0, len(rows), 250):
            r = httpx2.post(base + "/v1/appeals", json={"appeals": rows[i:i + 250]}, headers={"X-API-Key": admin},
                            timeout=60)
            assert r.status_code == 200, r.text[:300]
        yield base, analyst
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM,
                                    args=["--no-sandbox", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        yield browser
        browser.close()


class Offline:
    """A browser context that may reach localhost only; records what it blocked and every
    console error and uncaught page error."""

    def __init__(self, browser, **options):
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context = browser.new_context(locale="zh-CN", **options)
        self.context.route("**/*", self._route)

    def _route(self, route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("internetdisconnected")

    def page(self):
        page = self.context.new_page()
        # a console message's location is the resource at fault (a failed load names its URL)
        page.on("console", lambda m: m.type == "error" and self.errors.append(
            f"{(m.location or {}).get('url') or page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.errors.append(f"{page.url}: {e}"))
        return page

    def check(self, page, name: str, *, allow: tuple[str, ...] = ()):
        """No foreign request (but those in ``allow``), no console error, no missing glyph;
        a screenshot."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        blocked = [u for u in self.blocked if u not in allow]
        assert blocked == [], f"{name} asked for resources outside localhost: {blocked[:5]}"
        errors = [e for e in self.errors if not any(u in e for u in allow)]
        assert errors == [], f"{name}: console errors {errors[:5]}"
        assert missing_glyphs(page) == [], f"{name}: characters without a glyph"


def test_api_docs_render_offline(server, chromium):
    base, _ = server
    offline = Offline(chromium, viewport={"width": 1280, "height": 900})
    page = offline.page()
    page.goto(base + "/docs", wait_until="networkidle")
    page.locator(".swagger-ui .info .title").wait_for(timeout=15_000)
    assert "Suqiu (诉求) API" in page.locator(".swagger-ui .info .title").inner_text()
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert any("/v1/appeals" in p for p in paths) and any("/v1/digests/" in p for p in paths)
    offline.check(page, "docs")
    page.goto(base + "/redoc", wait_until="networkidle")
    page.get_by_text("Suqiu (诉求) API").first.wait_for(timeout=15_000)
    # ReDoc's bundle shows a "by Redocly" logo from its CDN and drops it when it fails to
    # load (its onError handler): the page is complete without it.
    offline.check(page, "redoc", allow=("https://cdn.redoc.ly/redoc/logo-mini.svg",))
    offline.context.close()


def test_dashboard_and_a_digest_offline_on_a_phone(server, chromium):
    base, analyst = server
    t0 = time.monotonic()
    phone = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
             "has_touch": True}
    offline = Offline(chromium, **phone)
    page = offline.page()
    page.goto(base + "/dashboard")
    assert page.url == base + "/dashboard/login"
    page.fill("#key", analyst)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/dashboard")
    assert "本周预警" in page.locator("h1").inner_text()
    assert page.locator("nav a").all_inner_texts() == ["本周预警", "各周与周报", "热点", "区域 × 类别"]
    fits = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    assert fits, "the dashboard is wider than a phone's screen"
    offline.check(page, "dashboard")
    cookie = next(c for c in offline.context.cookies() if c["name"] == "suqiu_key")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

    page.click("nav >> text=区域 × 类别")
    assert page.locator("table.heat tbody tr").count() >= 3
    offline.check(page, "dashboard-heat")
    page.click("nav >> text=各周与周报")
    assert page.locator("tbody tr").count() >= 50  # two years of weeks
    offline.check(page, "dashboard-weeks")

    page.click(f'a[href="/v1/digests/{DIGEST_WEEK}"]')  # the cookie signs the digest in
    page.wait_for_url(f"{base}/v1/digests/{DIGEST_WEEK}", timeout=30_000)
    assert page.locator("h1").inner_text() == "12345诉求周报"
    assert DIGEST_WEEK in page.title()
    assert page.locator("h2#headline").count() == 1 and page.locator("svg").count() >= 1
    offline.check(page, "digest")
    offline.context.close()
    assert time.monotonic() - t0 < 60
