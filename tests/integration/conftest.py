"""The local protocol servers (moto_s3, fake_gcs, azurite) are session fixtures defined once in
tests/conftest.py, shared with tests/reliability: a second definition here would start a second
server in the same process."""
