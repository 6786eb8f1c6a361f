"""AI model configs without a database: credentials, secret detection, parameters by task."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from tenancy_fixtures import ConfigError, Settings, SettingsError, load_settings
from tenancy_fixtures.spotify.ai_models import (
    PARAMETERS_BY_TASK,
    ModelRefused,
    ModelVocabulary,
    check_model,
    scan_for_plain_secrets,
)
from tenancy_fixtures.tenancy.credentials import (
    CredentialRefused,
    check_credentials,
    decrypt_credential,
    encrypt_credential,
    find_plain_secret,
    generate_secret_key,
    looks_like_secret,
    resolve_credential,
)

OPENAI_KEY = "sk-proj-" + "Q7xV2mLp9RtZ4kWb8NcJ3hYd6FsA1eGu"
VOCABULARY = ModelVocabulary.from_templates()


def model(**overrides: Any) -> dict[str, Any]:
    """A valid chat model row, with ``overrides``."""
    row: dict[str, Any] = {
        "model_id": "chat-main",
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "version": "2024-07-18",
        "task": "chat",
        "parameters": {"temperature": 0.5, "max_tokens": 512},
        "credentials": {"env": "OPENAI_API_KEY"},
        "tiers": ["premium", "enterprise"],
        "features": ["custom_models"],
        "enabled": True,
        "is_default": True,
    }
    row.update(overrides)
    return row


def check(row: dict[str, Any], *, key: str | None = None) -> None:
    """Both checks, as the loader runs them."""
    scan_for_plain_secrets(row)
    check_model(row, VOCABULARY, secret_key=lambda: key)


def refusal(row: dict[str, Any], *, key: str | None = None) -> ModelRefused:
    with pytest.raises(ModelRefused) as caught:
        check(row, key=key)
    return caught.value


class TestFernet:
    def test_a_credential_encrypted_with_a_key_decrypts_with_it(self) -> None:
        """encrypt_credential then decrypt_credential gives the value back."""
        key = generate_secret_key()

        token = encrypt_credential(OPENAI_KEY, key)

        assert OPENAI_KEY not in token
        assert OPENAI_KEY == decrypt_credential(token, SecretStr(key))

    def test_a_wrong_key_is_a_config_error_that_shows_neither_key_nor_value(self) -> None:
        """Decrypting with another key raises ConfigError naming the setting, not secrets."""
        key, other = generate_secret_key(), generate_secret_key()
        token = encrypt_credential(OPENAI_KEY, key)

        with pytest.raises(ConfigError) as caught:
            decrypt_credential(token, other)

        assert "TENANCY_SECRET_KEY" in str(caught.value)
        for secret in (key, other, OPENAI_KEY):
            assert secret not in str(caught.value)

    def test_rotated_keys_decrypt_tokens_of_the_old_key_and_encrypt_with_the_new(
        self,
    ) -> None:
        """With "new,old" the old key's tokens still decrypt; new tokens need the new key."""
        old, new = generate_secret_key(), generate_secret_key()
        old_token = encrypt_credential("old", old)

        new_token = encrypt_credential("new", f"{new},{old}")

        assert "old" == decrypt_credential(old_token, f"{new},{old}")
        assert "new" == decrypt_credential(new_token, new)
        with pytest.raises(ConfigError):
            decrypt_credential(new_token, old)

    def test_no_secret_key_is_a_settings_error(self) -> None:
        """Without TENANCY_SECRET_KEY, encrypting says which setting is missing."""
        with pytest.raises(SettingsError, match="TENANCY_SECRET_KEY"):
            encrypt_credential("value", None)

    def test_settings_refuse_a_secret_key_that_is_not_a_fernet_key(self) -> None:
        """A malformed TENANCY_SECRET_KEY is a SettingsError that does not print it."""
        with pytest.raises(SettingsError) as caught:
            load_settings(secret_key="not-a-key-but-a-secret-all-the-same")

        assert "TENANCY_SECRET_KEY" in str(caught.value)
        assert "not-a-key-but-a-secret-all-the-same" not in str(caught.value)

    def test_settings_never_show_the_secret_key(self) -> None:
        """repr(Settings) hides the key."""
        key = generate_secret_key()

        shown = repr(load_settings(secret_key=key))

        assert key not in shown


class TestSecretDetection:
    @pytest.mark.parametrize(
        "text",
        [
            OPENAI_KEY,
            "sk-ant-api03-" + "abcdEFGH1234ijklMNOP5678",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
            "Bearer " + "fX9kQ2pL7vR4tY8wZ1mN6bC3dH5jK0sAeUoIgT",
            "9fceb02d0ae598e95dc970b74767f19372d61af8",
        ],
    )
    def test_key_shaped_text_is_a_secret(self, text: str) -> None:
        """Known key prefixes and long random tokens are recognised."""
        assert looks_like_secret(text)

    @pytest.mark.parametrize(
        "text",
        [
            "claude-sonnet-4-5-20250929",
            "two-tower-recommender-with-a-long-name-v3",
            "You are a music guide. Recommend three tracks.",
            "3f2b6c1e-5d4a-4b7c-8e9f-0a1b2c3d4e5f",
            "https://api.example.com/v1/models/recommender-large",
            "OPENAI_API_KEY",
            "sk-learn",
        ],
    )
    def test_ordinary_text_is_not_a_secret(self, text: str) -> None:
        """Model names, prompts, UUIDs, URLs and variable names are not keys."""
        assert not looks_like_secret(text)

    def test_a_secret_nested_in_parameters_is_found_by_its_path(self) -> None:
        """find_plain_secret names where the key sits, not what it is."""
        value = {"options": [{"headers": {"x": f"Bearer {OPENAI_KEY}"}}]}

        assert "parameters.options[0].headers.x" == find_plain_secret(value, at="parameters")

    def test_a_field_named_like_a_secret_is_one_whatever_its_value(self) -> None:
        """An api_key parameter is refused even when its value looks harmless."""
        assert "parameters.api_key" == find_plain_secret({"api_key": "x"}, at="parameters")


class TestCredentialReferences:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ({"env": "OPENAI_API_KEY"}, ("env", "OPENAI_API_KEY")),
            ({"secret": "prod/openai/api-key"}, ("secret", "prod/openai/api-key")),
            (None, None),
        ],
    )
    def test_references_are_accepted(self, value: Any, expected: Any) -> None:
        """An environment variable name, a secret name or no credentials at all."""
        assert expected == check_credentials(value)

    @pytest.mark.parametrize(
        ("value", "rule"),
        [
            (OPENAI_KEY, "credentials:plain_text"),
            ({"api_key": OPENAI_KEY}, "credentials:plain_text"),
            ({"env": OPENAI_KEY}, "credentials:plain_text"),
            ({"secret": OPENAI_KEY}, "credentials:plain_text"),
            ({"env": "OPENAI KEY"}, "credentials:reference"),
            ({"env": "A", "secret": "b"}, "credentials:reference"),
            ({}, "credentials:reference"),
            (["OPENAI_API_KEY"], "credentials:reference"),
        ],
    )
    def test_anything_else_is_refused_without_repeating_it(self, value: Any, rule: str) -> None:
        """Plain keys break credentials:plain_text; malformed references their own rule."""
        with pytest.raises(CredentialRefused) as caught:
            check_credentials(value)

        assert rule == caught.value.rule
        assert OPENAI_KEY not in str(caught.value)


class TestModelChecks:
    def test_a_valid_model_passes(self) -> None:
        """The reference row is accepted."""
        check(model())

    @pytest.mark.parametrize(
        "overrides",
        [
            {"credentials": OPENAI_KEY},
            {"credentials": {"api_key": OPENAI_KEY}},
            {"parameters": {"temperature": 0.5, "api_key": OPENAI_KEY}},
            {"parameters": {"system_prompt": f"use {OPENAI_KEY} to call the API"}},
            {"parameters": '{"stop": ["' + OPENAI_KEY + '"]}'},
            {"model_name": OPENAI_KEY},
        ],
    )
    def test_a_plain_key_anywhere_is_refused_and_never_echoed(
        self, overrides: dict[str, Any]
    ) -> None:
        """Credentials, parameters (also as JSON text) and names are all scanned."""
        error = refusal(model(**overrides))

        assert "credentials:plain_text" == error.rule
        assert OPENAI_KEY not in str(error)

    @pytest.mark.parametrize(
        ("task", "parameters", "where"),
        [
            ("chat", {"temperature": 2.5}, "parameters.temperature"),
            ("chat", {"temperature": -0.1}, "parameters.temperature"),
            ("chat", {"top_p": 1.5}, "parameters.top_p"),
            ("chat", {"max_tokens": 0}, "parameters.max_tokens"),
            ("chat", {"max_tokens": True}, "parameters.max_tokens"),
            ("playlist_generation", {"temperature": "0.7"}, "parameters.temperature"),
            ("playlist_generation", {"max_tracks": 0}, "parameters.max_tracks"),
            ("recommendation", {"top_k": 0}, "parameters.top_k"),
            ("recommendation", {"top_k": 1001}, "parameters.top_k"),
            ("recommendation", {"embedding_size": 100}, "parameters.embedding_size"),
            ("audio_analysis", {"sample_rate": 12345}, "parameters.sample_rate"),
            ("audio_analysis", {"window_seconds": 0}, "parameters.window_seconds"),
            ("recommendation", {"temperature": 0.5}, "parameters.temperature"),
        ],
    )
    def test_parameters_are_validated_for_the_task(
        self, task: str, parameters: dict[str, Any], where: str
    ) -> None:
        """Ranges, types (strict) and unknown parameters depend on the model's task."""
        error = refusal(model(task=task, parameters=parameters, credentials=None))

        assert "ai_models:parameters" == error.rule
        assert "parameters" == error.column
        assert str(error).startswith(where)

    def test_every_task_has_a_parameter_model(self) -> None:
        """The four tasks of the schema's CHECK constraint are covered."""
        expected = {"recommendation", "playlist_generation", "audio_analysis", "chat"}
        assert expected == set(PARAMETERS_BY_TASK)

    @pytest.mark.parametrize(
        ("overrides", "rule"),
        [
            ({"tiers": ["gold"]}, "ai_models:tiers"),
            ({"tiers": []}, "ai_models:tiers"),
            ({"features": ["time_travel"]}, "ai_models:features"),
            ({"features": "custom_models"}, "ai_models:features"),
            ({"enabled": False, "is_default": True}, "ai_models:default_disabled"),
            (
                {"credentials": {"encrypted": "gAAAAA-not-a-real-token"}},
                "credentials:undecryptable",
            ),
        ],
    )
    def test_tiers_features_defaults_and_tokens_are_checked(
        self, overrides: dict[str, Any], rule: str
    ) -> None:
        """Only the config template's tiers and features; a default is enabled."""
        error = refusal(model(**overrides), key=generate_secret_key())

        assert rule == error.rule

    def test_an_encrypted_credential_must_decrypt_with_the_settings_key(self) -> None:
        """A token of another key is refused; one of the settings' key is accepted."""
        key, other = generate_secret_key(), generate_secret_key()
        row = model(credentials={"encrypted": encrypt_credential(OPENAI_KEY, other)})

        error = refusal(row, key=key)
        check(model(credentials={"encrypted": encrypt_credential(OPENAI_KEY, key)}), key=key)

        assert "credentials:undecryptable" == error.rule
        assert OPENAI_KEY not in str(error)


class TestResolveCredential:
    def test_an_env_reference_reads_the_environment(self) -> None:
        """{"env": NAME} is the value of NAME."""
        settings = Settings()

        found = resolve_credential(model(), settings, environ={"OPENAI_API_KEY": OPENAI_KEY})

        assert OPENAI_KEY == found

    def test_an_unset_variable_is_a_config_error_naming_it(self) -> None:
        """The error names the variable and the model."""
        with pytest.raises(ConfigError, match="OPENAI_API_KEY") as caught:
            resolve_credential(model(), Settings(), environ={})
        assert "chat-main" in str(caught.value)

    def test_an_encrypted_reference_decrypts_with_the_settings_key(self) -> None:
        """{"encrypted": TOKEN} decrypts with TENANCY_SECRET_KEY."""
        key = generate_secret_key()
        row = model(credentials={"encrypted": encrypt_credential(OPENAI_KEY, key)})

        assert OPENAI_KEY == resolve_credential(row, load_settings(secret_key=key))

    def test_a_secret_reference_asks_the_secret_manager(self) -> None:
        """{"secret": NAME} goes to the resolver the application passes."""
        row = model(credentials={"secret": "prod/openai"})
        store = {"prod/openai": OPENAI_KEY}

        assert OPENAI_KEY == resolve_credential(row, Settings(), secrets=store.__getitem__)
        with pytest.raises(ConfigError, match="secrets="):
            resolve_credential(row, Settings())

    def test_a_model_without_credentials_is_a_config_error(self) -> None:
        """NULL credentials cannot be resolved."""
        with pytest.raises(ConfigError, match="no credentials"):
            resolve_credential(model(credentials=None), Settings())
