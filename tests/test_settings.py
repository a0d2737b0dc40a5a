"""Settings: the original app's environment variables keep working."""

import pytest

from shared.settings import DEFAULT_STORAGE_URL, Settings, SettingsError


def test_defaults_are_the_embedded_local_setup():
    settings = Settings.from_env({})
    assert settings.mode == "embedded"
    assert settings.storage_url == settings.results_url == DEFAULT_STORAGE_URL
    assert settings.max_upload_mb == 50
    assert settings.max_upload_bytes == 50 * 1024 * 1024
    assert settings.secret_key is None
    assert dict(settings.dataset_uris) == {}


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"UPLOAD_DIR": "/tmp/uploads"}, "storage_url", "/tmp/uploads"),
        ({"GCS_BUCKET": "my-bucket-name"}, "storage_url", "gs://my-bucket-name"),
        ({"GCS_BUCKET": "b", "UPLOAD_DIR": "/tmp/u"}, "storage_url", "gs://b"),
        ({"STORAGE_URL": "gs://new/prefix", "GCS_BUCKET": "old"}, "storage_url", "gs://new/prefix"),
        ({"MODEL_DIR": "/tmp/models"}, "results_url", "/tmp/models"),
        ({"RESULTS_BUCKET": "gs://my-bucket/results"}, "results_url", "gs://my-bucket/results"),
        ({"RESULTS_BUCKET": "my-bucket"}, "results_url", "gs://my-bucket"),
        ({"UPLOAD_DIR": "/tmp/uploads"}, "results_url", "/tmp/uploads"),
        ({"MAX_UPLOAD_MB": "200"}, "max_upload_mb", 200),
        ({"FLASK_SECRET_KEY": "old-secret"}, "secret_key", "old-secret"),
        ({"FLASK_SECRET_KEY": "old", "SECRET_KEY": "new"}, "secret_key", "new"),
        ({"APP_MODE": "cloud"}, "mode", "cloud"),
        ({"PORT": "8080"}, "port", 8080),
    ],
)
def test_environment_mapping(env, field, expected):
    assert getattr(Settings.from_env(env), field) == expected


def test_dataset_uris_from_the_original_variables():
    env = {"KEPLER_URI": "gs://b/kepler.csv", "K2_URI": "/data/k2.csv", "TESS_URI": " "}
    assert dict(Settings.from_env(env).dataset_uris) == {"kepler": "gs://b/kepler.csv", "k2": "/data/k2.csv"}


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"MAX_UPLOAD_MB": "lots"}, r"MAX_UPLOAD_MB='lots': expected a whole number"),
        ({"MAX_UPLOAD_MB": "0"}, r"MAX_UPLOAD_MB='0': expected a positive number"),
        ({"PORT": "-1"}, r"PORT='-1': expected a positive number"),
        ({"APP_MODE": "prod"}, r"APP_MODE='prod': expected 'embedded' or 'cloud'"),
    ],
)
def test_bad_values_are_named(env, match):
    with pytest.raises(SettingsError, match=match):
        Settings.from_env(env)


@pytest.mark.parametrize(
    ("env", "trigger"),
    [
        ({}, "embedded"),
        ({"TRAIN_URL": "http://127.0.0.1:9000/"}, "http"),
        ({"APP_MODE": "cloud"}, "storage"),
        ({"APP_MODE": "cloud", "TRAIN_URL": "https://train", "TRAIN_TRIGGER": "storage"}, "storage"),
    ],
)
def test_train_trigger(env, trigger):
    assert Settings.from_env(env).train_trigger == trigger


def test_http_trigger_needs_an_address():
    with pytest.raises(SettingsError, match="TRAIN_TRIGGER=http needs TRAIN_URL"):
        Settings.from_env({"TRAIN_TRIGGER": "http"})
