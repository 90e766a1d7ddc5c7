"""docs/configuration.md and deploy/mqim.example.toml against config.Settings: every setting is
documented with its default and set in the sample file, the docs name no setting the code lacks,
and the sample file loads to exactly the defaults."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest

from config import Settings, load_settings
from config.settings import PREFIX
from tests.docs.markdown import DOCS, REPO_ROOT, read, table_rows, without_code

SAMPLE = REPO_ROOT / "deploy" / "mqim.example.toml"
FIELDS = [field.name for field in dataclasses.fields(Settings)]
DEFAULTS = Settings()


def documented() -> dict[str, str]:
    """The rows of every table under "## Every setting" (all its ### parts), by variable name."""
    text = without_code(read(DOCS / "configuration.md"))
    body = text.split("\n## Every setting\n", 1)[1].split("\n## ", 1)[0]
    return table_rows(body)


def _as_written(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


@pytest.mark.parametrize("name", FIELDS)
def test_every_setting_is_documented_with_its_default(name: str) -> None:
    rows = documented()
    variable = f"{PREFIX}{name.upper()}"
    assert variable in rows, f"{variable} is missing from docs/configuration.md"
    default = _as_written(getattr(DEFAULTS, name))
    if default:  # empty defaults are described in words ("empty: embedded")
        default_cell = rows[variable].split("|")[0]
        assert f"`{default}`" in default_cell, f"{variable}: default {default!r} not documented"


def test_docs_name_no_setting_the_code_lacks() -> None:
    variables = {f"{PREFIX}{name.upper()}" for name in FIELDS} | {f"{PREFIX}CONFIG"}
    assert sorted(set(documented()) - variables) == []
    mentioned = set(re.findall(r"\bMQIM_[A-Z_]+[A-Z]\b", read(DOCS / "configuration.md")))
    assert sorted(mentioned - variables) == []


def test_sample_file_sets_every_setting() -> None:
    with SAMPLE.open("rb") as fh:
        keys = set(tomllib.load(fh))
    assert sorted(set(FIELDS) - keys) == [], "settings missing from deploy/mqim.example.toml"


def test_sample_file_loads_to_the_defaults() -> None:
    assert load_settings({"MQIM_CONFIG": str(SAMPLE)}) == DEFAULTS
