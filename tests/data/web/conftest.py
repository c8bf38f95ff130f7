"""Fixtures for the web-cleaning tests: the clean config and the shipped WARC."""
import pathlib

import pytest

import configs.clean
from web_test_data import SHIPPED_WARC


@pytest.fixture
def clean_config():
  return configs.clean.get_config()


@pytest.fixture
def shipped_warc() -> pathlib.Path:
  return SHIPPED_WARC
