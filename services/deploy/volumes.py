"""What a container mounts on the target: artifact versions and its API keys, as Docker volumes.

An artifact version gets one volume (`wb-art-<name>-<version>`), filled once through the engine's
archive API and verified file by file against the manifest inside the target, then reused by every
release that names that version; containers mount it read-only. API keys go into a small volume of
their own per container, as a file readable by the app's user only, never into its environment.
"""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.artifacts.model import Manifest
from services.errors import IntegrityError

if TYPE_CHECKING:
    from docker import DockerClient

MANIFEST_NAME = ".workbench-manifest.json"
VERIFY = """
import hashlib, json, pathlib, sys
root = pathlib.Path("/dest")
manifest = json.loads((root / ".workbench-manifest.json").read_text())
bad = []
for f in manifest["files"]:
    path = root / f["path"]
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    if digest != f["sha256"]:
        bad.append(f["path"])
print("\\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
"""


def volume_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "-".join(("wb", *parts)))[:200]


def mount_artifact(client: DockerClient, image: str, manifest: Manifest, folder: Path) -> str:
    """The verified volume holding `manifest`'s files (filled from `folder` when missing or damaged)."""
    name = volume_name("art", manifest.name, manifest.version)
    if client.volumes.list(filters={"name": f"^{name}$"}) and not _bad_files(client, image, name):
        return name
    client.volumes.create(name, labels={"workbench.role": "artifact", "workbench.artifact": manifest.ref})
    with tempfile.TemporaryFile() as archive:
        _write_tar(archive, folder, manifest)
        _put(client, image, name, archive)
    bad = _bad_files(client, image, name)
    if bad:
        raise IntegrityError(
            f"{manifest.ref} on the target does not match its manifest: {', '.join(bad[:5])}",
            hint="the copy was damaged on the way; deploy again",
        )
    return name


def secrets_volume(client: DockerClient, image: str, container: str, keys: list[str]) -> str:
    """A volume with file `api_keys` (one key per line), readable only by the image's user."""
    name = volume_name("secrets", container)
    client.volumes.create(name, labels={"workbench.role": "secrets", "workbench.container": container})
    uid = _image_uid(client, image)
    data = ("\n".join(keys) + "\n").encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("api_keys")
        info.size, info.uid, info.mode = len(data), uid or 0, 0o400 if uid is not None else 0o444
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    _put(client, image, name, archive)
    return name


def _put(client: DockerClient, image: str, volume: str, archive: Any) -> None:
    """Unpack `archive` into `volume` through a helper container that is never started."""
    helper = client.containers.create(image, volumes={volume: {"bind": "/dest", "mode": "rw"}}, entrypoint=["true"])
    try:
        archive.seek(0)
        helper.put_archive("/dest", archive)
    finally:
        helper.remove(force=True)


def _bad_files(client: DockerClient, image: str, volume: str) -> list[str]:
    """Files in `volume` whose sha256 differs from its manifest (checked on the target)."""
    from docker.errors import ContainerError

    try:
        client.containers.run(
            image,
            remove=True,
            entrypoint=["python3", "-c", VERIFY],
            user="0",
            network_disabled=True,
            volumes={volume: {"bind": "/dest", "mode": "ro"}},
        )
    except ContainerError as exc:
        out = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or "")
        return [line for line in out.splitlines() if line.strip()] or ["(the check failed)"]
    return []


def _write_tar(out: Any, folder: Path, manifest: Manifest) -> None:
    with tarfile.open(fileobj=out, mode="w") as tar:
        for entry in manifest.files:
            info = tar.gettarinfo(folder / entry.path, arcname=entry.path)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = 0o444
            with (folder / entry.path).open("rb") as data:
                tar.addfile(info, data)
        raw = manifest.to_json()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size, info.mode = len(raw), 0o444
        tar.addfile(info, io.BytesIO(raw))


def _image_uid(client: DockerClient, image: str) -> int | None:
    user = str(client.images.get(image).attrs.get("Config", {}).get("User") or "")
    uid = user.split(":", 1)[0]
    return int(uid) if uid.isdigit() else None
