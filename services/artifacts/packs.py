"""Packs: a version's small files travel together, in a few blobs instead of one request each.

Each request has a fixed cost at the storage (Azurite spends ~2.5 ms of its one core on each; over
a WAN each is a round trip, and Azure bills per operation), which small files pay in full. So a push
puts the files up to PACK_FILE_MAX into packs of up to PACK_BYTES: consecutive files in path order,
their bytes end to end, stored at `<version>/.packs/<id>`, where `id` is the sha256 of the members'
listing (path, sha256, size). The same files make the same packs, so a resumed push skips the
packs already there. `<version>/.packs/index.json`, written before the manifest, names each pack's
members in order; their sizes (and so their offsets) come from the manifest. A pull checks the index
like any remote answer, fetches each pack once and verifies every member against the manifest's
sha256. A version without an index (pushed before packs, or by another tool) moves file by file.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from services.artifacts.model import PACKS, FileEntry, Manifest
from services.errors import IntegrityError

INDEX = f"{PACKS}/index.json"
PACK_FILE_MAX = 1 << 20
"""Files up to this size travel in packs."""
PACK_BYTES = 16 << 20
"""A pack's largest size: the block size of a large file's upload."""
INDEX_FORMAT = 1
_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Pack:
    """Files stored end to end in one blob, in this order."""

    key: str
    members: tuple[FileEntry, ...]
    wanted: frozenset[str] | None = None
    """The members a pull still needs (None: all)."""

    @property
    def id(self) -> str:
        """The sha256 of the members' listing: the last segment of `key`."""
        return self.key.rsplit("/", 1)[1]

    @property
    def entries(self) -> tuple[FileEntry, ...]:
        """The members this copy moves."""
        return tuple(m for m in self.members if self.wanted is None or m.path in self.wanted)

    @property
    def size(self) -> int:
        return sum(m.size for m in self.entries)

    def offsets(self) -> list[tuple[FileEntry, int]]:
        """Each member with the offset of its first byte in the pack."""
        placed, offset = [], 0
        for member in self.members:
            placed.append((member, offset))
            offset += member.size
        return placed


def plan(manifest: Manifest, prefix: str) -> tuple[list[Pack], list[FileEntry]]:
    """The packs a push makes of the manifest's small files (two files or more each), and the files
    that travel alone."""
    groups: list[list[FileEntry]] = []
    for entry in sorted((f for f in manifest.files if f.size <= PACK_FILE_MAX), key=lambda f: f.path):
        if not groups or sum(m.size for m in groups[-1]) + entry.size > PACK_BYTES:
            groups.append([])
        groups[-1].append(entry)
    packs = [_pack(prefix, group) for group in groups if len(group) > 1]
    packed = {m.path for pack in packs for m in pack.members}
    return packs, [f for f in manifest.files if f.path not in packed]


def index_json(packs: list[Pack]) -> bytes:
    """The index a push writes: each pack's id and its members' paths, in order."""
    listing = [{"id": p.id, "files": [m.path for m in p.members]} for p in packs]
    return json.dumps({"format": INDEX_FORMAT, "packs": listing}, indent=1).encode()


def read_index(raw: bytes | None, manifest: Manifest, prefix: str, *, origin: str) -> list[Pack]:
    """The packs an index names, each checked against the manifest; [] when there is no index.
    IntegrityError when it is not one the workbench wrote for these files."""
    if raw is None:
        return []
    entries = {f.path: f for f in manifest.files}
    try:
        data = json.loads(raw)
        if data["format"] != INDEX_FORMAT:
            raise ValueError(f"format {data['format']!r}")
        packs = [_listed(prefix, str(p["id"]), [entries[str(path)] for path in p["files"]]) for p in data["packs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise _refused(origin, f"not a pack index of this version ({exc})") from None
    members = [m.path for pack in packs for m in pack.members]
    if len(members) != len(set(members)):
        raise _refused(origin, "a file is listed twice")
    return packs


def _pack(prefix: str, members: list[FileEntry]) -> Pack:
    listing = "\n".join(f"{m.path}\0{m.sha256}\0{m.size}" for m in members)
    return Pack(f"{prefix}/{PACKS}/{hashlib.sha256(listing.encode()).hexdigest()}", tuple(members))


def _listed(prefix: str, pack_id: str, members: list[FileEntry]) -> Pack:
    """The pack an index entry names; ValueError unless its id is its members' listing."""
    pack = _pack(prefix, members)
    if not members or not _ID.match(pack_id) or pack.id != pack_id:
        raise ValueError(f"pack {pack_id[:16]!r} does not match its listing")
    return pack


def _refused(origin: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{origin}: {why}; refused",
        hint="the workbench did not write this index; push the version again from a workspace that has it intact",
    )
