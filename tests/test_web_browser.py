"""The explorer in headless Chromium (Debian's package, driven by Playwright): load the page, recommend,
wait for the table and the plot, switch the objective, fit on an uploaded CSV, save screenshots."""
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install '.[web]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine and none could be installed "
                                                          "(.ci/run installs Debian's chromium where apt works)")


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from energylens.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the explorer did not start within 20 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def test_recommend_switch_objective_and_screenshot(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    page.select_option("#model", "meta-llama/Llama-3.1-8B")
    page.fill("#max_gpus", "4")
    page.click("#submit")
    page.wait_for_selector("#pareto[data-objective=energy] svg .mark-symbol path", timeout=20_000)
    rows = page.locator("#ranked tbody tr")
    assert rows.count() >= 3
    assert page.locator("#ranked thead th.objective").inner_text() == "J/req"
    energy_first = rows.nth(0).inner_text()
    # The plot has one point per deployment meeting the SLOs, coloured by GPU (two GPUs: two colours).
    fills = page.eval_on_selector_all("#pareto svg .mark-symbol path", "ps => [...new Set(ps.map(p => p.getAttribute('fill')))]")
    assert len([f for f in fills if f and f != "transparent"]) >= 2
    assert page.locator("#breakdown svg .mark-rect path").count() >= 2  # the selected row's terms
    page.click("button[data-objective=cost]")
    page.wait_for_selector("#pareto[data-objective=cost] svg .mark-symbol path", timeout=20_000)
    assert page.locator("#ranked thead th.objective").inner_text() == "$/M out tok"
    costs = [float(t) for t in page.locator("#ranked tbody td.objective").all_inner_texts()[:5]]
    assert costs == sorted(costs) and "Cost" in page.inner_text("#plot-title")
    assert page.locator("#assumptions li").count() >= 4
    page.locator("#ranked tbody tr").nth(2).click()  # another row: its breakdown replaces the first one's
    page.wait_for_function("document.querySelector('#breakdown svg').textContent.includes('#')")
    shot = tmp_path / "explorer.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not errors, errors
    assert energy_first  # the energy ranking was shown before the switch


def test_bad_input_shows_the_clis_line(server, browser):
    page = browser.new_page()
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    page.fill("#gpu_hour_usd", "H100=abc")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert page.inner_text("#error") == ("gpu_hour_usd: price of H100 must be a number from 0 to 1000 USD "
                                         "per GPU-hour, got 'abc'")
    # The page documents the JSON fields from the server's mapping, and the electricity price's assumption.
    assert page.locator("#api-help tr[data-field=gpu]").count() == 1
    assert "owned hardware" in page.inner_text("#electricity-note")


def test_fit_upload_draws_a_parity_plot(server, browser, tmp_path):
    from energylens.evaluation.synthetic import synthetic_profiles

    csv = tmp_path / "runs.csv"
    synthetic_profiles(30, seed=5).to_csv(csv, index=False)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    page.set_input_files("#profile-file", str(csv))
    page.select_option("#fit-mode", "recalibrate")
    page.click("#fit-submit")
    page.wait_for_selector("#parity[data-model] svg .mark-symbol path", timeout=30_000)
    assert page.locator("#parity svg .mark-symbol.role-mark path").count() == 60  # 30 rows x (recalibrated, shipped)
    assert "recalibrate on 30 rows" in page.inner_text("#fit-note")
    assert page.is_checked("#use-fitted")
    page.screenshot(path=str(tmp_path / "parity.png"), full_page=True)
