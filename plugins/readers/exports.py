"""Clinical export formats besides DICOM and EDF, each parsed by its ecgdatakit parser (`...readers.clinical`).

GE MUSE XML (the MUSE ECG management system's `RestingECG` export, base64 waveforms, often only I, II, V1-V6),
HL7 aECG (the FDA's annotated ECG, HL7 v3 `AnnotatedECG`), Philips Sierra XML (`restingecgdata`, PageWriter
carts) and SCP-ECG (EN 1064 / ISO 11073-91064, carts' binary format).
XML is parsed through defusedxml: a DOCTYPE is read, entity declarations and external entities are refused,
and a declared encoding that does not match the bytes is decoded from the bytes. The sniffers below only
apply without ecgdatakit, so a user is told which extra to install rather than that the file is unknown.
"""

from __future__ import annotations

import re

from ecgcl.plugins.readers.clinical import ClinicalFileReader


def _xml_root(head: bytes, pattern: str) -> bool:
    text = head.decode("utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8", errors="ignore")
    return re.search(pattern, text) is not None


class MuseXmlReader(ClinicalFileReader):
    """GE MUSE XML resting ECGs (RestingECG root)."""

    kind = "muse_xml"
    suffixes = (".xml",)
    parser = "ge_muse_xml:GEMuseXMLParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return _xml_root(head, r"<RestingECG[\s>]")


class HL7aECGReader(ClinicalFileReader):
    """HL7 v3 annotated ECGs (AnnotatedECG root), the FDA submission format."""

    kind = "hl7_aecg"
    suffixes = (".xml",)
    parser = "hl7_aecg:HL7aECGParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return _xml_root(head, r"<([A-Za-z_][\w.-]*:)?AnnotatedECG\b")


class PhilipsXmlReader(ClinicalFileReader):
    """Philips Sierra XML resting ECGs (restingecgdata root)."""

    kind = "philips_xml"
    suffixes = (".xml",)
    parser = "sierra_xml:SierraXMLParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return _xml_root(head, r"<restingecgdata[\s>]")


class ScpEcgReader(ClinicalFileReader):
    """SCP-ECG binary files (EN 1064), as carts write them."""

    kind = "scp_ecg"
    suffixes = (".scp",)
    parser = "scp_ecg:SCPECGParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return len(head) >= 6
