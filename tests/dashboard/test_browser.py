"""dashboard (pages, static script): the dashboard in a real browser: Debian's chromium, headless, driven through
chromium-driver by Selenium.

Screenshots of the overview, a study and an upload land in ``tests/artifacts/`` (git-ignored) for reviewers.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import pydicom
import pytest
from pydicom.uid import generate_uid

from db import jobs
from db.models import JobState
from models.imaging import decode_dataset
from models.preprocess import to_uint8
from tests.helpers.dashboard import OPERATOR, Site
from tests.helpers.peers import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable("chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    ARTIFACTS.mkdir(exist_ok=True)
    yield driver
    driver.quit()


def eventually(check: Callable[[], bool], driver: Any, timeout_s: float = 60.0, reload: bool = True) -> None:
    """Wait until ``check`` holds, reloading the page between looks (the worker is a separate process)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met on {driver.current_url}")
        time.sleep(1.0)
        if reload:
            driver.refresh()


def by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def image_loaded(driver: Any, selector: str) -> bool:
    images = by_css(driver, selector)
    return bool(images) and all(driver.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)


def log_in(driver: Any, site: Site) -> None:
    driver.get(site.node.dashboard_url + "/")
    if by_css(driver, "section.tiles"):
        return  # this module's browser logged in already
    assert "/login" in driver.current_url
    by_css(driver, "input[name=username]")[0].send_keys(OPERATOR.name)
    by_css(driver, "input[name=password]")[0].send_keys(OPERATOR.password)
    by_css(driver, "button#login")[0].click()
    eventually(lambda: bool(by_css(driver, "section.tiles")), driver, 10, reload=False)


def test_the_overview_and_studies_pages_carry_what_an_admin_operates_by(browser: Any, site: Site) -> None:
    """Looked at for the elements, not the pixels: every chart with both axes, ticks and titles with units; the
    listener, storage, lanes, the state legend and the search form; times with their zone."""
    log_in(browser, site)
    for chart in ("throughput-hour", "latency-hour", "throughput-day", "latency-day", "acknowledgement"):
        if chart == "acknowledgement" and not by_css(browser, f"svg#{chart}"):
            continue  # drawn once a critical result has been acknowledged
        assert len(by_css(browser, f"svg#{chart}")) == 1
        assert by_css(browser, f"svg#{chart} line.x-axis") and by_css(browser, f"svg#{chart} line.y-axis")
        assert len(by_css(browser, f"svg#{chart} text.y-tick")) == 3 and by_css(browser, f"svg#{chart} text.x-tick")
        titles = [t.get_attribute("textContent") for t in by_css(browser, f"svg#{chart} text.axis-title")]
        assert titles[0] in ("studies / 5 min", "studies / 60 min", "seconds") and titles[1] == (
            "hours ago" if chart.endswith("day") else "minutes ago"
        ), titles
    bars = by_css(browser, "svg#throughput-day rect")
    assert any(float(b.get_attribute("height")) > 0 for b in bars), "studies finished today have a bar"
    listener = by_css(browser, "#listener")[0].text
    assert "accepting connections" in listener and "from STORESCU" in listener, listener
    storage = by_css(browser, "#storage")[0].text
    assert "spool" in storage and "early analysis" in storage and "free" in storage and " of " in storage, storage
    lanes = [t.text for t in by_css(browser, ".tile.lane")]
    assert any("analysis queue" in t for t in lanes) and any("delivery queue" in t for t in lanes), lanes
    assert not any("queue stat" in t for t in lanes)
    zone = time.strftime("%Z")
    assert f" {zone}" in by_css(browser, "h1 small")[0].text, "times carry their zone"
    browser.save_screenshot(str(ARTIFACTS / "overview-operations.png"))

    browser.get(f"{site.node.dashboard_url}/studies")
    assert by_css(browser, "form#search input[name=study]") and by_css(browser, "form#search input[type=date]")
    by_css(browser, "details#legend summary")[0].click()
    legend = by_css(browser, "details#legend")[0].text
    assert "DEAD_LETTER" in legend and "retries ran out" in legend and "not a calibrated probability" in legend
    browser.save_screenshot(str(ARTIFACTS / "studies-search.png"))
    (job,) = site.node.jobs(str(site.studies[2].StudyInstanceUID))
    field = by_css(browser, "form#search input[name=study]")[0]
    field.send_keys(str(site.studies[2].AccessionNumber))
    by_css(browser, "form#search button")[0].click()
    eventually(lambda: "study=" in browser.current_url, browser, 10, reload=False)
    links = {a.get_attribute("href").rsplit("/", 1)[-1] for a in by_css(browser, "#studies a")}
    assert links == {str(job.study_id)}, links


def test_operator_session_in_a_real_browser(browser: Any, site: Site, tmp_path: Path, rg1: Path) -> None:
    log_in(browser, site)
    assert "Workers online" in browser.page_source
    browser.save_screenshot(str(ARTIFACTS / "overview.png"))

    # 1. The processed RG1 study with its findings, and 2. its timeline.
    (job,) = site.node.jobs(str(site.studies[0].StudyInstanceUID))
    browser.get(f"{site.node.dashboard_url}/studies")
    by_css(browser, f"#studies a[href='/studies/{job.study_id}']")[0].click()
    eventually(lambda: browser.current_url.endswith(f"/studies/{job.study_id}"), browser, 30, reload=False)
    assert len(by_css(browser, "table.findings tr")) >= 2, "the RG1 study should list its findings"
    headers = [th.text for th in by_css(browser, "table.findings th")]
    assert headers[2] == "score" and not any("probability" in h for h in headers), headers
    assert len(by_css(browser, "ol.timeline li")) >= 3
    assert image_loaded(browser, "img.overlay")
    browser.save_screenshot(str(ARTIFACTS / "study.png"))

    # 3. Upload: a DICOM copy of RG1 becomes a study in the queue and shows its overlay once analysed.
    copy_path = tmp_path / "upload.dcm"
    ds = copy.deepcopy(pydicom.dcmread(rg1))
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(copy_path, enforce_file_format=True)
    browser.get(f"{site.node.dashboard_url}/upload")
    by_css(browser, "input#file")[0].send_keys(str(copy_path))
    by_css(browser, "button#upload")[0].click()
    eventually(lambda: "/studies/" in browser.current_url, browser, 60, reload=False)  # the POST answers by redirect
    eventually(lambda: image_loaded(browser, "img.overlay") and len(by_css(browser, "table.findings tr")) >= 2, browser)
    assert site.node.jobs(str(ds.StudyInstanceUID)), "the upload went through the pipeline"

    # A PNG is analysed on the spot.
    png = tmp_path / "rg1.png"
    cv2.imwrite(str(png), to_uint8(decode_dataset(pydicom.dcmread(rg1)).pixels))
    browser.get(f"{site.node.dashboard_url}/upload")
    by_css(browser, "input#file")[0].send_keys(str(png))
    by_css(browser, "button#upload")[0].click()
    eventually(lambda: "/uploads/" in browser.current_url, browser, 60, reload=False)  # after detection on the spot
    eventually(lambda: image_loaded(browser, "img.overlay"), browser, 10)
    assert len(by_css(browser, "table.findings tr")) >= 2
    browser.save_screenshot(str(ARTIFACTS / "upload.png"))

    # 4. Requeue a dead-lettered job with its button.
    dead = [j for j in site.node.jobs() if j.state is JobState.DEAD_LETTER]
    assert dead, "the site's fixture leaves dead-lettered jobs"
    browser.get(f"{site.node.dashboard_url}/studies/{dead[0].study_id}")
    buttons = [b for b in by_css(browser, f"#job-{dead[0].job_id} button") if b.text == "Requeue"]
    buttons[0].click()
    eventually(lambda: f"requeued by {OPERATOR.name}" in browser.page_source, browser, 10)
    with site.sessions() as session:
        events = jobs.job_events(session, dead[0].job_id)
    # The job left the dead letter, queued again. Its destination is still down here, so its new attempt may already
    # have failed and dead-lettered it again (a CI run saw it): its events say what happened, its state may not.
    requeued = events.index((JobState.QUEUED, f"requeued by {OPERATOR.name}"))
    assert JobState.DEAD_LETTER in [state for state, _ in events[:requeued]]
