"""Built-in readers (registered by the plugin manager like any third-party reader).

Research layouts: `wfdb` (PhysioNet/CinC WFDB records, alias `cinc`), `ptbxl`, `mimic_iv_ecg`, `code15`,
`numpy`, `parquet`. Clinical exports through ecgdatakit (`pip install 'ecgcl[formats]'`): `dicom`, `muse_xml`,
`hl7_aecg`, `philips_xml`, `scp_ecg`, `edf`.
"""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.readers.arrays import NumpyReader
from ecgcl.plugins.readers.parquet import ParquetReader
from ecgcl.plugins.readers.code15 import Code15Reader
from ecgcl.plugins.readers.dicom import DicomReader
from ecgcl.plugins.readers.edf import EdfReader
from ecgcl.plugins.readers.exports import HL7aECGReader, MuseXmlReader, PhilipsXmlReader, ScpEcgReader
from ecgcl.plugins.readers.mimic import MimicEcgReader
from ecgcl.plugins.readers.ptbxl import PtbxlReader
from ecgcl.plugins.readers.wfdb import WfdbReader


@hookimpl
def register_readers(registry):
    registry.add("wfdb", WfdbReader, kind="reader", aliases=("cinc",))
    registry.add("ptbxl", PtbxlReader, kind="reader")
    registry.add("mimic_iv_ecg", MimicEcgReader, kind="reader")
    registry.add("code15", Code15Reader, kind="reader")
    registry.add("numpy", NumpyReader, kind="reader")
    registry.add("parquet", ParquetReader, kind="reader")
    registry.add("dicom", DicomReader, kind="reader")
    registry.add("muse_xml", MuseXmlReader, kind="reader")
    registry.add("hl7_aecg", HL7aECGReader, kind="reader")
    registry.add("philips_xml", PhilipsXmlReader, kind="reader")
    registry.add("scp_ecg", ScpEcgReader, kind="reader")
    registry.add("edf", EdfReader, kind="reader")


__all__ = ["Code15Reader", "DicomReader", "EdfReader", "HL7aECGReader", "MimicEcgReader", "MuseXmlReader",
           "NumpyReader", "ParquetReader", "PhilipsXmlReader", "PtbxlReader", "ScpEcgReader", "WfdbReader",
           "register_readers"]
