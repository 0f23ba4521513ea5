"""The run configuration: TOML file, command-line precedence, saved config read back."""

from __future__ import annotations

import pytest

from ecgcl.config import RunConfig, parse_key_values, read_config_file, resolve_config
from ecgcl.errors import EcgclError


def test_toml_file_then_command_line_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('encoder = "cnn_attn_lstm"\nrepeats = 5\nlabel-fraction = [0.01, 0.1, 1.0]\n'
                    'aug = "permute+noise"\n[encoder_args]\nwidth = 8\n')
    config = resolve_config(read_config_file(path), {"repeats": 2, "seed": None})
    assert config.encoder == "cnn_attn_lstm" and config.repeats == 2  # command line wins
    assert config.label_fractions == [0.01, 0.1, 1.0] and config.encoder_args == {"width": 8}
    assert config.seed == RunConfig().seed  # None means "not given"


def test_saved_config_reads_back_identically(tmp_path):
    config = resolve_config(None, {"label_fractions": "0.1,1.0", "encoder_args": {"width": 4}, "out": str(tmp_path)})
    saved = config.save(tmp_path)
    assert resolve_config(read_config_file(saved)) == config


@pytest.mark.parametrize("text, match", [
    ("encodr = 'cnn'\n", "unknown option 'encodr' \\(did you mean 'encoder'\\?\\)"),
    ("repeats = 'many'\n", "--repeats: cannot use 'many'"),
    ("repeats = [\n", "not valid TOML"),
    ("input = 'wavelet'\n", "--input must be one of time, fft"),
    ("methods = ['pretrained', 'supervised']\n", "unknown method 'pretrained'"),
    ("label_fractions = [0.0]\n", "--label-fraction values must be in"),
])
def test_bad_config_files_give_clear_errors(tmp_path, text, match):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(EcgclError, match=match):
        resolve_config(read_config_file(path))


def test_key_value_options():
    assert parse_key_values(["width=8", "dropout=0.2", "bidirectional=true", "mode=lead"], "--encoder-arg") == \
        {"width": 8, "dropout": 0.2, "bidirectional": True, "mode": "lead"}
    with pytest.raises(EcgclError, match="--encoder-arg expects key=value"):
        parse_key_values(["width"], "--encoder-arg")
