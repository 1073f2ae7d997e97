"""An OME-XML document cut to some of its series (pure Python, no Java)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from . import safexml


class OmeXml:
    """An OME-XML document parsed once, from which the XML of any set of series is cut."""

    def __init__(self, xml: str) -> None:
        self.xml = xml
        try:
            self.root: ET.Element | None = safexml.fromstring(xml)
        except ET.ParseError:
            self.root = None

    def subset(self, series: list[int]) -> str:
        """The document with only the Images of ``series`` (in that order), the Instruments
        they refer to, and no Plate, Screen, ROI or annotations. Unparsable XML is returned
        whole."""
        root = self.root
        if root is None:
            return self.xml
        namespace = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        images = root.findall(f"{namespace}Image")
        keep = [images[i] for i in series if 0 <= i < len(images)]
        instrument_refs = {
            ref.get("ID") for image in keep for ref in image.iter(f"{namespace}InstrumentRef")
        }
        out = ET.Element(root.tag, root.attrib)
        out.text, out.tail = root.text, root.tail
        for child in root:
            tag = child.tag[len(namespace) :]
            if tag == "Image":
                continue
            if tag == "Instrument" and child.get("ID") not in instrument_refs:
                continue
            if tag in ("Plate", "Screen", "ROI", "StructuredAnnotations"):
                continue
            out.append(child)
        for image in keep:
            out.append(image)
        ET.register_namespace("", namespace.strip("{}"))
        return ET.tostring(out, encoding="unicode")
