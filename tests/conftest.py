"""Session fixtures shared by every test folder: the local protocol servers, one per test
session each (moto's in-process backends are global, so two moto servers in one process would
clash). Defined here once, so that integration and reliability tests share the same servers."""

from tests.integration.azurite_server import azurite
from tests.integration.gcs_server import fake_gcs
from tests.integration.s3_server import moto_s3

__all__ = ["azurite", "fake_gcs", "moto_s3"]
