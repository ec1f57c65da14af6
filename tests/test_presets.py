"""Named presets (`sketchrec.presets`): the validated settings every table uses, by name."""

from __future__ import annotations

import pytest

from sketchrec import presets
from sketchrec.models import MODELS


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_builds_its_model_with_valid_settings(name):
    preset = presets.describe(name)
    model = presets.make(name)
    assert isinstance(model, MODELS[preset.model]) and preset.note
    MODELS[preset.model].check_params({**model.get_params()})
    assert {k: model.get_params()[k] for k in preset.params} == {
        k: tuple(v) if isinstance(v, list) else v for k, v in preset.params.items()}


def test_get_returns_a_copy_and_make_applies_overrides():
    params = presets.get("emde-session")
    params["hidden"] = 1
    assert presets.get("emde-session")["hidden"] == 1024
    assert presets.make("vsknn-session", threads=2).get_params()["threads"] == 2
    with pytest.raises(KeyError, match="unknown preset 'nope'; known: emde-profile"):
        presets.get("nope")


def test_the_session_preset_is_emdes_default_and_the_cli_default():
    from sketchrec.cli import _EMDE_SESSION
    from sketchrec.models import EMDE
    defaults = EMDE().get_params()
    assert all(defaults[k] == v for k, v in presets.get("emde-session").items())
    assert _EMDE_SESSION == presets.get("emde-session")
