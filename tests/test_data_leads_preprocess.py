"""Lead-name normalisation and the scipy preprocessing steps (resample, band-pass, crop/pad)."""

import numpy as np
import pytest

from ecgcl.data.leads import STANDARD_LEADS, lead_indices, normalise_lead_name, parse_leads
from ecgcl.data.preprocess import BandPass, bandpass, crop_or_pad, parse_band, resample
from ecgcl.errors import EcgclError


@pytest.mark.parametrize("raw, canonical", [("aVR", "aVR"), ("AVR", "aVR"), ("avr", "aVR"), (" avf ", "aVF"),
                                            ("v1", "V1"), ("MLII", "II"), ("i", "I"), ("Pleth", "Pleth")])
def test_lead_names_normalise_to_one_spelling(raw, canonical):
    assert normalise_lead_name(raw) == canonical


def test_parse_leads_defaults_to_the_standard_order_and_rejects_duplicates():
    assert parse_leads(None) == STANDARD_LEADS == parse_leads("standard")
    assert parse_leads("ii, avl,V6") == ("II", "aVL", "V6")
    with pytest.raises(EcgclError, match="more than once"):
        parse_leads("I,i")
    with pytest.raises(EcgclError, match="names no lead"):
        parse_leads(",")


def test_lead_indices_reorder_and_report_missing():
    available = ["V1", "I", "AVR", "II"]
    index, missing = lead_indices(available, ("I", "II", "aVR", "V1"))
    assert index.tolist() == [1, 3, 2, 0] and missing == []
    _, missing = lead_indices(available, ("I", "V6"))
    assert missing == ["V6"]


def test_resample_keeps_the_frequency_of_a_sine():
    fs_in, fs_out, seconds, freq = 500.0, 100.0, 10, 7.0
    t = np.arange(int(fs_in * seconds)) / fs_in
    x = np.sin(2 * np.pi * freq * t)[None, None].repeat(3, 0).astype(np.float32)  # (3, 1, 5000)
    y = resample(x, fs_in, fs_out)
    assert y.shape == (3, 1, 1000) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y[0, 0]))
    assert np.fft.rfftfreq(1000, 1 / fs_out)[spectrum.argmax()] == pytest.approx(freq)
    assert resample(x, 500, 500) is x


def test_bandpass_removes_baseline_wander_and_high_frequency_noise():
    fs, n = 500.0, 10000
    t = np.arange(n) / fs
    x = (np.sin(2 * np.pi * 10 * t) + 2 * np.sin(2 * np.pi * 0.2 * t) + 0.5 * np.sin(2 * np.pi * 120 * t) + 3.0)
    y = bandpass(x[None].astype(np.float32), fs, BandPass(0.5, 40))[0]
    amplitude = np.abs(np.fft.rfft(y)) * 2 / n
    at = lambda f: amplitude[int(round(f * n / fs))]  # noqa: E731
    assert at(10) == pytest.approx(1.0, abs=0.02)  # the ECG band passes
    assert at(0.2) < 0.05 and at(120) < 0.01 and abs(y.mean()) < 0.01  # wander, mains-like noise and offset do not


def test_parse_band_forms_and_errors():
    assert parse_band("0.5-40") == BandPass(0.5, 40.0)
    assert parse_band("0.5-") == BandPass(0.5, None)
    assert parse_band("-40") == BandPass(None, 40.0)
    assert parse_band(None) is None and parse_band("none") is None
    for bad in ("40", "a-b", "40-0.5", "-"):
        with pytest.raises(EcgclError, match="--filter"):
            parse_band(bad)
    with pytest.raises(EcgclError, match="below half the sampling rate"):
        bandpass(np.zeros((1, 100), np.float32), 100.0, BandPass(0.5, 60))


def test_crop_or_pad():
    x = np.arange(10, dtype=np.float32).reshape(1, 10)
    assert crop_or_pad(x, 4).tolist() == [[0, 1, 2, 3]]
    assert crop_or_pad(x, 12).tolist() == [list(range(10)) + [0, 0]]
