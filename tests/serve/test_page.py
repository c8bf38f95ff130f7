"""The web page in a real browser (headless Chromium through selenium): it loads, a chat message gets the
model's streamed reply with its tool call shown, the token view and the attention heat maps render, and
the browser logs no errors. Skips where Debian's chromium and chromium-driver are not installed."""
import shutil

import pytest

from tests.serve.conftest import CONVERSATIONS

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
                                "chromium-driver; .ci/run installs them)")


@pytest.fixture(scope="module")
def browser():
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  options = webdriver.ChromeOptions()
  options.binary_location = CHROMIUM
  for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400"):
    options.add_argument(flag)
  options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
  driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
  driver.implicitly_wait(0)
  yield driver
  driver.quit()


def _wait(browser, condition, timeout=120):
  from selenium.common.exceptions import TimeoutException
  from selenium.webdriver.support.ui import WebDriverWait
  try:
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda driver: condition(driver))
  except TimeoutException:
    pytest.fail(f"the page did not get there in {timeout} s; the browser logged {browser.get_log('browser')}")


def _errors(browser) -> list:
  return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_page_chats_shows_tokens_and_attention_without_errors(server, served, browser, tmp_path):
  from selenium.webdriver.common.by import By
  find = lambda css: browser.find_element(By.CSS_SELECTOR, css)
  browser.get(server.url + "/")
  _wait(browser, lambda d: served.name in find("#info").text)

  find("#chat-input").send_keys("What is 6*7?")
  find("#chat-send").click()
  reply = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".msg.assistant[data-done='1']"))[0]
  assert find(".msg.user").text == "What is 6*7?"
  assert reply.find_element(By.CSS_SELECTOR, ".tool-call").text == "[calculator] 6*7"
  assert reply.find_element(By.CSS_SELECTOR, ".tool-output").text == "→ 42"
  assert reply.text.endswith(CONVERSATIONS[0][1]["content"][2]["text"])
  assert find("#error").get_attribute("hidden") is not None

  find("[data-tab='tokens']").click()
  find("#tokens-chat").click()
  find("#tokens-go").click()
  _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#tokens-out .tok"))
  pieces = browser.find_elements(By.CSS_SELECTOR, "#tokens-out .tok")
  specials = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#tokens-out .tok.special")]
  assert specials[:2] == ["<|bos|>", "<|user_start|>"] and specials[-1] == "<|assistant_start|>"
  assert find("#tokens-stats").text.startswith(f"{len(pieces)} tokens, ")

  find("[data-tab='inside']").click()
  find("#inside-go").click()
  _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#inside-lens table"))
  cfg = served.loaded.model().cfg
  maps = browser.find_elements(By.CSS_SELECTOR, "#inside-attn canvas.attn-map")
  assert len(maps) == cfg.num_layers * cfg.num_heads and maps[0].size["width"] > 0
  assert len(browser.find_elements(By.CSS_SELECTOR, "#inside-norm tr")) == cfg.num_layers + 2  # header + L + 1

  find("[data-tab='next']").click()
  find("#next-cont").send_keys(" God created")
  find("#next-go").click()
  _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#next-heat .heat"))
  assert len(browser.find_elements(By.CSS_SELECTOR, "#next-bars .bar-row")) == 10

  find("[data-tab='inside']").click()
  browser.save_screenshot(str(tmp_path / "inside.png"))
  assert (tmp_path / "inside.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert _errors(browser) == []
