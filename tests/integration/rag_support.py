"""Real files for the RAG tests: a copy of the demo documents, a hand-made PDF, bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_DOCUMENTS = Path(__file__).parents[2] / "services" / "demo_data" / "documents"


def copy_demo_documents(folder: Path) -> Path:
    shutil.copytree(DEMO_DOCUMENTS, folder)
    return folder


def minimal_pdf(pages: list[str]) -> bytes:
    """A valid PDF with one line of Helvetica text per page (correct xref offsets)."""
    count = len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(f"{4 + 2 * i} 0 R".encode() for i in range(count))
        + f"] /Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_mixed_folder(folder: Path) -> dict[str, Path]:
    """One good file of every supported type and one bad file of several kinds."""
    folder.mkdir(parents=True)
    files = {
        "html": folder / "page.html",
        "pdf": folder / "manual.pdf",
        "jsonl": folder / "faq.jsonl",
        "csv": folder / "tickets.csv",
        "binary": folder / "blob.txt",
        "latin1": folder / "legacy.md",
        "broken_pdf": folder / "broken.pdf",
        "bad_jsonl": folder / "bad.jsonl",
        "no_column": folder / "nocol.csv",
        "unsupported": folder / "image.png",
    }
    files["html"].write_text(
        "<html><head><title>Onboarding</title><script>var secret = 1;</script></head>"
        "<body><h1>Onboarding</h1><p>New developers request SSH access from the platform lead.</p></body></html>"
    )
    files["pdf"].write_bytes(minimal_pdf(["The quarterly GPU report lives on page one.", "Page two covers storage."]))
    files["jsonl"].write_text(
        '{"text": "Adapters are stored in the models container.", "topic": "storage"}\n'
        '{"text": "Collections are rebuilt nightly.", "topic": "rag"}\n'
    )
    files["csv"].write_text(
        'id,body,team\n1,"The deploy server pulls images over SSH.",ops\n2,"Rollback takes one key.",ops\n'
    )
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    files["latin1"].write_bytes("Caf\xe9 notes in Latin-1".encode("latin-1"))
    files["broken_pdf"].write_bytes(b"%PDF-1.4\nthis is not really a pdf\n")
    files["bad_jsonl"].write_text('{"text": "fine"}\n{not json}\n')
    files["no_column"].write_text("a,b\n1,2\n")
    files["unsupported"].write_bytes(b"\x89PNG\r\n\x1a\n")
    return files
