"""The explorer in headless Chromium (Debian's package, driven by Playwright), as a person sees it at 1280 x 900 and
390 x 844: the results in view after Recommend, the table's columns (all on a desktop, the key ones on a phone)
inside the viewport, nothing wider than the viewport, plots as wide as their box, ranks and notes as the CLI's,
the ranking's uncertainty, the model in use after a fit and the way back. Screenshots are saved as artifacts:
under $ENERGYLENS_SCREENSHOTS when set, else in the test's tmp dir (pytest keeps the last few runs')."""
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install '.[web]')")
pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install '.[web]')")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install '.[test]')")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine and none could be installed "
                                                          "(.ci/run installs Debian's chromium where apt works; "
                                                          "apt-get install -y chromium)")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# What the page asks for (its defaults: Llama-3.1-8B on H100-SXM and B200), with at most 4 GPUs.
REQUEST = dict(model="meta-llama/Llama-3.1-8B", gpus=["H100-SXM", "B200"], max_gpus=4)
KEY_COLUMNS = ("rank", "gpus", "layout", "batch_size", "energy_request_j", "energy_token_j", "note")


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


@pytest.fixture
def shots(tmp_path):
    """Where screenshots go: $ENERGYLENS_SCREENSHOTS (kept for people and CI to look at) or the test's tmp dir."""
    folder = Path(os.environ.get("ENERGYLENS_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def expected():
    """The CLI's view of the same request: the table's rows (rank labels, notes) and headers."""
    from energylens import recommend
    from energylens.cli import _recommend_view as view

    rec = recommend(**REQUEST)
    shown = view.shown_rows(rec)
    frame, _ = view.table_frame(shown, rec.table)
    return {"rec": rec, "shown": shown, "headers": list(frame.columns)}


def open_page(browser, server, viewport):
    page = browser.new_page(viewport=viewport)
    errors, requests = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=15_000)
    return page, errors, requests


def recommend_on(page, objective="energy"):
    page.select_option("#model", REQUEST["model"])
    page.fill("#max_gpus", str(REQUEST["max_gpus"]))
    page.click("#submit")
    page.wait_for_selector(f"#pareto[data-objective={objective}] svg .mark-symbol path", timeout=30_000)
    page.wait_for_timeout(300)  # the scroll to the results settles


def inside(box, viewport) -> bool:
    return (box is not None and box["x"] >= -0.5 and box["y"] >= -0.5 and box["x"] + box["width"] <= viewport["width"] + 0.5
            and box["y"] + box["height"] <= viewport["height"] + 0.5)


# Elements whose right edge passes the viewport, outside the boxes that scroll on their own (the table's).
OVERFLOWING = """() => {
  const w = window.innerWidth, out = [];
  const scrolls = (e) => { for (let p = e.parentElement; p; p = p.parentElement) {
    if (getComputedStyle(p).overflowX !== 'visible') return true; } return false; };
  for (const e of document.body.querySelectorAll('*')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && (r.right > w + 0.5 || r.left < -0.5) && !scrolls(e)) out.push(e.tagName + '#' + e.id + '.' + e.className);
  }
  return out;
}"""


def check_layout(page, viewport, columns):
    """Nothing wider than the viewport, the results and `columns` of the table (header and first row) in view,
    the plot as wide as its box."""
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    assert page.evaluate(OVERFLOWING) == []
    assert inside(page.locator("#results .model-line").bounding_box(), viewport)
    for key in columns:
        head = page.locator(f"#ranked thead th[data-key={key}]")
        first = page.locator(f"#ranked tbody tr:first-child td[data-key={key}]")
        assert inside(head.bounding_box(), viewport), (key, head.bounding_box())
        assert inside(first.bounding_box(), viewport), (key, first.bounding_box())
    plot = page.locator("#pareto svg").bounding_box()
    box = page.locator("#pareto").bounding_box()
    assert plot["width"] >= 0.9 * box["width"] and plot["width"] >= 250 and plot["height"] >= 150, (plot, box)
    assert plot["x"] >= 0 and plot["x"] + plot["width"] <= viewport["width"] + 0.5
    bars = page.eval_on_selector_all("#breakdown svg .mark-rect path",
                                     "ps => ps.map(p => p.getBoundingClientRect().width)")
    assert len(bars) >= 2 and max(bars) > 20  # the selected row's terms, drawn


def test_desktop_shows_every_column_beside_the_form(server, browser, shots, expected):
    page, errors, requests = open_page(browser, server, DESKTOP)
    recommend_on(page)
    columns = page.eval_on_selector_all("#ranked thead th", "ths => ths.map(t => t.dataset.key)")
    check_layout(page, DESKTOP, columns)
    # The form's column and the results side by side; the Recommend button in view.
    form, results = page.locator("#controls").bounding_box(), page.locator("#results").bounding_box()
    assert form["x"] + form["width"] <= results["x"] and inside(page.locator("#submit").bounding_box(), DESKTOP)
    # Every column of the CLI's table, by the CLI's header (J/tok, main term and note among them).
    headers = page.eval_on_selector_all("#ranked thead th", "ths => ths.map(t => t.innerText)")
    assert set(expected["headers"]) <= set(headers), (expected["headers"], headers)
    assert page.locator("#ranked thead th.objective").inner_text() == "J/req"
    page.screenshot(path=str(shots / "explorer-1280x900.png"))
    page.screenshot(path=str(shots / "explorer-1280x900-full.png"), full_page=True)
    assert (shots / "explorer-1280x900.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not errors, errors
    assert all(u.startswith((server, "data:")) for u in requests), requests  # no external request


def test_phone_shows_the_key_columns_in_one_column(server, browser, shots):
    page, errors, _ = open_page(browser, server, PHONE)
    form, intro = page.locator("#controls").bounding_box(), page.locator("#content").bounding_box()
    assert intro["y"] >= form["y"] + form["height"] - 1  # one column: the results area under the form
    recommend_on(page)
    check_layout(page, PHONE, KEY_COLUMNS)
    hidden = page.locator("#ranked thead th[data-key=ttft_ms]")
    assert not hidden.is_visible()  # the other columns behind the toggle
    page.screenshot(path=str(shots / "explorer-390x844.png"))
    page.screenshot(path=str(shots / "explorer-390x844-full.png"), full_page=True)
    page.click("#toggle-columns")
    assert hidden.is_visible() and page.get_attribute("#toggle-columns", "aria-pressed") == "true"
    wrap = page.eval_on_selector("#table-wrap", "w => [w.scrollWidth, w.clientWidth]")
    assert wrap[0] > wrap[1]  # the table scrolls inside its box, the page does not
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(shots / "explorer-390x844-all-columns.png"))
    assert not errors, errors


def test_ranks_notes_and_uncertainty_follow_the_cli(server, browser, expected):
    from energylens.cli._console import fmt

    page, errors, _ = open_page(browser, server, DESKTOP)
    recommend_on(page)
    shown, rec = expected["shown"], expected["rec"]
    ranks = page.locator("#ranked tbody td[data-key=rank]").all_inner_texts()
    assert ranks == list(shown["table_rank"])  # 1, 2, 3, ... and (k) for a data-parallel copy of layout k
    notes = [t.split() for t in page.locator("#ranked tbody td[data-key=note]").all_inner_texts()]
    for got, (_, row) in zip(notes, shown.iterrows()):
        assert ("extrap" in got) == bool(row["extrapolation"]) and ("lat-opt" in got) == bool(row["latency_optimal"])
    legend = page.inner_text("#table-legend")
    assert "#: rank among distinct layouts" in legend and "data-parallel copies" in legend
    if shown["replica_of_smaller"].any():
        assert "(k): such a data-parallel copy of layout k" in legend
    best = rec.table.iloc[0]
    text = page.inner_text("#uncertainty")
    assert f"{fmt(best['energy_request_j'])} J/request (95% interval {fmt(best['energy_request_lo_j'])}–" \
           f"{fmt(best['energy_request_hi_j'])} J)" in text, text
    k, others = rec.attrs["intervals_overlap"], 49
    which = "all" if k == others else f"{k} of"
    assert f"The 95% intervals of the best and {which} the next {others} deployments overlap" in text
    flagged = int((shown["extrapolation"] != "").sum())
    assert flagged and f"{flagged} of the {len(shown)} listed deployments extrapolate" in text
    # An extrapolating row: the reason as a tooltip and, once selected, in words.
    i = next(i for i, (_, row) in enumerate(shown.iterrows()) if row["extrapolation"])
    badge = page.locator("#ranked tbody tr").nth(i).locator(".badge.extrap")
    assert shown.iloc[i]["extrapolation"] in badge.get_attribute("title")
    page.locator("#ranked tbody tr").nth(i).click()
    page.wait_for_selector("#selected-extrapolation")
    assert shown.iloc[i]["extrapolation"] in page.inner_text("#selected-extrapolation")
    assert page.inner_text("#breakdown-title") == f"Where the energy of #{shown.iloc[i]['table_rank']} goes"
    assert not errors, errors


def test_switch_objective_keeps_the_table_and_plot(server, browser):
    page, errors, _ = open_page(browser, server, DESKTOP)
    recommend_on(page)
    page.click("button[data-objective=cost]")
    page.wait_for_selector("#pareto[data-objective=cost] svg .mark-symbol path", timeout=20_000)
    assert page.locator("#ranked thead th.objective").inner_text() == "$/Mtok"
    costs = [float(t) for t in page.locator("#ranked tbody td.objective").all_inner_texts()[:5]]
    assert costs == sorted(costs) and "Cost" in page.inner_text("#plot-title")
    assert page.locator("#assumptions li").count() >= 4
    fills = page.eval_on_selector_all("#pareto svg .mark-symbol path", "ps => [...new Set(ps.map(p => p.getAttribute('fill')))]")
    assert len([f for f in fills if f and f != "transparent"]) >= 2  # two GPUs, two colours
    assert not errors, errors


def test_bad_input_shows_the_clis_line(server, browser):
    page, _, _ = open_page(browser, server, DESKTOP)
    page.fill("#gpu_hour_usd", "H100=abc")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert page.inner_text("#error") == ("gpu_hour_usd: price of H100 must be a number from 0 to 1000 USD "
                                         "per GPU-hour, got 'abc'")
    # The page documents the JSON fields from the server's mapping, and the electricity price's assumption.
    assert page.locator("#api-help tr[data-field=gpu]").count() == 1
    assert "owned hardware" in page.inner_text("#electricity-note")


def test_fit_names_the_model_in_use_and_goes_back_on_a_phone(server, browser, tmp_path, shots, capsys):
    from energylens.evaluation.synthetic import synthetic_profiles

    csv = tmp_path / "runs.csv"
    synthetic_profiles(30, seed=5).to_csv(csv, index=False)
    page, errors, _ = open_page(browser, server, PHONE)
    recommend_on(page)
    assert page.inner_text("#model-in-use").startswith("Model: the shipped model")
    assert not page.is_visible("#use-shipped")
    page.set_input_files("#profile-file", str(csv))
    page.select_option("#fit-mode", "recalibrate")
    page.click("#fit-submit")
    page.wait_for_selector("#parity[data-model] svg .mark-symbol path", timeout=30_000)
    assert page.locator("#parity svg .mark-symbol.role-mark path").count() == 60  # 30 rows x (the model kept, shipped)
    # The CLI's comparison of `fit --from default`, in its words: three errors and the one kept.
    from energylens.cli.main import main

    main(["fit", str(csv), "--from", "default", "-o", str(tmp_path / "cli.json")])
    printed = " ".join(capsys.readouterr().out.split())
    line = printed[printed.index("compared on 30 rows:"):printed.index("(the lowest cross-validated error)")]
    comparison = " ".join(page.inner_text("#fit-comparison").split())
    assert comparison.startswith("energylens fit runs.csv --from default: compared on 30 rows") and line in comparison
    assert "kept a fit from scratch" in line  # these rows come from a closed form: a fresh fit wins by CV
    # The ranking follows the fitted model, and says so plainly.
    page.wait_for_function("document.getElementById('model-in-use').textContent.includes('fitted on 30 rows')")
    assert "Model: fitted on 30 rows of runs.csv (from scratch: fit --from default kept it" in page.inner_text("#model-in-use")
    assert page.is_checked("#use-fitted") and page.is_visible("#use-shipped")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.evaluate(OVERFLOWING) == []
    parity = page.locator("#parity svg").bounding_box()
    assert parity["width"] >= 250 and parity["x"] + parity["width"] <= PHONE["width"]
    page.locator("#calibrate").screenshot(path=str(shots / "fit-390x844.png"))
    assert inside(page.locator("#fit-note").bounding_box(), PHONE)  # no jump to the results after a fit
    page.locator("#results .model-line").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "fitted-results-390x844.png"))
    page.click("#use-shipped")  # back to the shipped model: the ranking is priced with it again
    page.wait_for_function("document.getElementById('model-in-use').textContent.startsWith('Model: the shipped model')")
    assert not page.is_checked("#use-fitted") and not page.is_visible("#use-shipped")
    assert not errors, errors


FIRST_LOAD = [{"width": 1280, "height": 800}, PHONE]


@pytest.mark.parametrize("viewport", FIRST_LOAD, ids=lambda v: f"{v['width']}x{v['height']}")
def test_recommend_is_in_view_on_first_load(server, browser, viewport):
    """The intro tells people to press Recommend: it is on screen before any scrolling, at both sizes."""
    page, errors, _ = open_page(browser, server, viewport)
    assert page.evaluate("window.scrollY") == 0
    assert inside(page.locator("#submit").bounding_box(), viewport), page.locator("#submit").bounding_box()
    assert "then Recommend" in page.inner_text("#intro")
    assert not errors, errors


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, PHONE], ids=lambda v: f"{v['width']}x{v['height']}")
def test_load_table_scrolls_in_its_own_box(server, browser, viewport, shots):
    """The load table (wider than a phone) scrolls inside its box: the page is never wider than the screen, the
    table's first columns are in view once scrolled to; the traffic is described once, not once per rate."""
    page, errors, _ = open_page(browser, server, viewport)
    page.fill("#max_gpus", "2")
    page.fill("#rate", "0.5,2")
    page.click("#load-submit")
    page.wait_for_selector("#load-table[data-rates='2']", timeout=60_000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.evaluate(OVERFLOWING) == []
    page.locator("#load-table").scroll_into_view_if_needed()
    for i in (1, 2, 3):  # req/s, best at this load, replicas: header and first row
        assert inside(page.locator(f"#load-table thead th:nth-child({i})").bounding_box(), viewport), i
        assert inside(page.locator(f"#load-table tbody tr:first-child td:nth-child({i})").bounding_box(), viewport), i
    if viewport["width"] < 700:
        wrap = page.eval_on_selector("#load-wrap", "w => [w.scrollWidth, w.clientWidth]")
        assert wrap[0] > wrap[1]  # wider than the phone: it scrolls inside its box
    note = page.inner_text("#load-note")
    assert note.count("seed 0 (generated)") == 1 and note.count("lognormal lengths") == 1, note
    assert "Poisson arrivals at each rate" in note
    page.screenshot(path=str(shots / f"load-{viewport['width']}.png"), full_page=True)
    assert not errors, errors


def test_errors_are_red_and_old_results_are_not_left_as_current(server, browser, tmp_path):
    """An upload error is in the red box, not grey note text; after an error the previous results are cleared or
    marked stale; the fit note counts the fitted numbers once."""
    ok, bad = tmp_path / "runs.csv", tmp_path / "nogpu.csv"
    from energylens.evaluation.synthetic import synthetic_profiles

    rows = synthetic_profiles(12, seed=2)
    rows.to_csv(ok, index=False)
    rows.drop(columns=["gpu"]).to_csv(bad, index=False)
    page, errors, _ = open_page(browser, server, DESKTOP)
    red = "rgb(170, 0, 0)"
    # A fit, then a file without the gpu column: the error in red, the earlier fit's figures and plot gone.
    page.select_option("#fit-mode", "fit")
    page.set_input_files("#profile-file", str(ok))
    page.click("#fit-submit")
    page.wait_for_selector("#parity[data-model] svg", timeout=30_000)
    note = page.inner_text("#fit-note")
    assert re.search(r"\d+ fitted numbers", note) and len(re.findall(r"\d+ fitted numbers", note)) == 1, note
    page.set_input_files("#profile-file", str(bad))
    page.click("#fit-submit")
    page.wait_for_selector("#fit-error:not([hidden])", timeout=30_000)
    message = page.inner_text("#fit-error")
    assert message.startswith("nogpu.csv") and "'gpu'" in message, message
    assert page.eval_on_selector("#fit-error", "e => getComputedStyle(e).color") == red
    assert page.inner_text("#fit-note") == "" and page.locator("#parity svg").count() == 0
    # A recommendation, then a bad price: the error in red, the old results marked as not updated.
    recommend_on(page)
    assert not page.is_visible("#stale")
    page.fill("#gpu_hour_usd", "H100=abc")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert page.eval_on_selector("#error", "e => getComputedStyle(e).color") == red
    assert page.is_visible("#stale") and "Not updated" in page.inner_text("#stale")
    assert page.eval_on_selector("#ranked", "t => Number(getComputedStyle(t.closest('.table-wrap')).opacity)") < 1
    page.fill("#gpu_hour_usd", "")
    page.click("#submit")
    page.wait_for_selector("#stale", state="hidden", timeout=30_000)
    assert page.is_hidden("#error")
    # The load form: its error in its own red box, and the table of an earlier load cleared.
    page.fill("#max_gpus", "2")
    page.fill("#rate", "1")
    page.click("#load-submit")
    page.wait_for_selector("#load-table[data-rates='1']", timeout=60_000)
    page.fill("#rate", "-3")
    page.click("#load-submit")
    page.wait_for_selector("#load-error:not([hidden])", timeout=10_000)
    assert "rate" in page.inner_text("#load-error")
    assert page.eval_on_selector("#load-error", "e => getComputedStyle(e).color") == red
    assert page.locator("#load-table tbody tr").count() == 0 and page.get_attribute("#load-table", "data-rates") is None
    assert not errors, errors
