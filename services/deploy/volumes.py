"""What a container mounts on the target: artifact versions and its API keys, as Docker volumes.

An artifact version gets one volume, named by a hash of its kind, name, version and file digest (so
`chat-bot@1` and `chat@bot-1` never share one), filled once through the engine's archive API and
verified on the target, then reused by every release that names that version only while it holds
exactly the requested manifest and its files, nothing else; containers mount it read-only. API keys go
into a small volume of their own per container, as a file readable by the app's user only, never into
its environment; it is removed with its container. The proxy's TLS certificate and key go the same way
into one volume of the proxy's, the key readable by root (nginx's master process) only.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.artifacts.model import Manifest
from services.errors import ArtifactInUseError, IntegrityError

if TYPE_CHECKING:
    from docker import DockerClient

MANIFEST_NAME = ".workbench-manifest.json"
SECRETS_DEST = "/run/secrets/workbench"
TLS_VOLUME = "wb-proxy-tls"
TLS_DEST = "/run/secrets/workbench-tls"
TLS_CERT = "cert.pem"
TLS_KEY = "key.pem"
READABLE = 40
"""Characters of the artifact's name kept readable in its volume name (the hash makes it unique)."""
LISTING = """
import hashlib, os

def listing(root):
    rows = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in (".", *sorted(dirs + files)):
            path = os.path.normpath(os.path.join(folder, name))
            st = os.lstat(path)
            fields = (os.path.relpath(path, root), st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_ino,
                      st.st_mtime_ns, st.st_ctime_ns)
            rows.append(" ".join(map(repr, fields)))
    return hashlib.sha256("\\n".join(rows).encode()).hexdigest()
"""
"""`listing(root)`: a digest of every entry's path, type and mode, owner, size, inode, mtime and ctime (stat
only, nothing read). Any write, rename, chmod or chown sets a ctime the writer cannot choose, so an equal
listing means an untouched tree."""
VERIFY = (
    LISTING
    + """
import json, pathlib, sys
print(listing("/dest"))  # before reading: a change while hashing shows in the next listing
root = pathlib.Path("/dest")
raw = (root / ".workbench-manifest.json").read_bytes() if (root / ".workbench-manifest.json").is_file() else b""
if hashlib.sha256(raw).hexdigest() != sys.argv[1]:
    print("(a different manifest)", file=sys.stderr)
    sys.exit(1)
listed = {f["path"]: f["sha256"] for f in json.loads(raw)["files"]}
present = {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}
bad = sorted(present - set(listed) - {".workbench-manifest.json"})
for name, sha in listed.items():
    path = root / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not path.is_symlink() else None
    if digest != sha:
        bad.append(name)
print("\\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
"""
)
"""Hashes the manifest and every file of the volume at /dest (exit 1 and the bad paths on stderr when they differ
from the manifest whose bytes hash to argv[1]); prints the volume's listing first."""
LISTINGS = (
    LISTING
    + """
import sys
for index, name in enumerate(sys.argv[1:]):
    print(name, listing(f"/v/{index}"))
"""
)
"""Prints `NAME LISTING` for each volume named in argv, mounted at /v/0, /v/1, ... in that order."""


@dataclass(frozen=True)
class Mounted:
    """An artifact version's volume on one engine, as a deploy mounts it."""

    volume: str
    seal: str
    """The volume's state when its files last matched the manifest (`seal`): recorded, it lets a later deploy
    skip hashing them again while the volume's listing is unchanged."""
    hashed: bool
    """Whether this deploy hashed its files (False: unchanged since an earlier deploy's full check)."""


def volume_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", "-".join(("wb", *parts)))[:200]


def artifact_volume(manifest: Manifest) -> str:
    """`wb-art-<readable name>-<hash>`: the hash covers kind, name, version and file digest, unambiguously."""
    identity = "\0".join((manifest.kind, manifest.name, manifest.version, manifest.digest()))
    readable = re.sub(r"[^A-Za-z0-9_.-]", "-", manifest.name)[:READABLE]
    return f"wb-art-{readable}-{hashlib.sha256(identity.encode()).hexdigest()[:32]}"


def mount_artifacts(
    client: DockerClient, image: str, wanted: list[tuple[Manifest, Path]], *, sealed: Mapping[str, str]
) -> list[Mounted]:
    """The verified volume of each artifact version in `wanted` (`mount_artifact`); `sealed`: volume name to the
    seal an earlier full check on this engine recorded (kept on the deploying machine, never read from the
    target). A volume whose seal is still that one is not hashed again; all are listed by one container."""
    expected = {artifact_volume(m): hashlib.sha256(m.to_json()).hexdigest() for m, _ in wanted}
    present = {v.name for v in client.volumes.list()}
    recheck = {name: sha for name, sha in expected.items() if name in sealed and name in present}
    now = seals(client, image, recheck) if recheck else {}
    unchanged = {name for name, value in now.items() if value == sealed[name]}
    names = [artifact_volume(m) for m, _ in wanted]  # one per mount: two mounts may name one version
    return [
        Mounted(name, sealed[name], hashed=False) if name in unchanged else mount_artifact(client, image, m, folder)
        for (m, folder), name in zip(wanted, names, strict=True)
    ]


def mount_artifact(client: DockerClient, image: str, manifest: Manifest, folder: Path) -> Mounted:
    """The volume holding exactly `manifest`'s files, hashed on the target (refilled from `folder` when missing
    or not exact), with its seal."""
    name = artifact_volume(manifest)
    expected = hashlib.sha256(manifest.to_json()).hexdigest()
    if client.volumes.list(filters={"name": f"^{name}$"}):
        bad, listed = _bad_files(client, image, name, expected)
        if not bad:
            return Mounted(name, seal(client, name, expected, listed), hashed=True)
        _drop_volume(client, name, manifest)
    client.volumes.create(name, labels={"workbench.role": "artifact", "workbench.artifact": manifest.ref})
    with tempfile.TemporaryFile() as archive:
        _write_tar(archive, folder, manifest)
        _put(client, image, name, archive)
    bad, listed = _bad_files(client, image, name, expected)
    if bad:
        raise IntegrityError(
            f"{manifest.ref} on the target does not match its manifest: {', '.join(bad[:5])}",
            hint="the copy was damaged on the way; deploy again",
        )
    return Mounted(name, seal(client, name, expected, listed), hashed=True)


def seals(client: DockerClient, image: str, wanted: dict[str, str]) -> dict[str, str]:
    """The seal of each volume in `wanted` (volume name to the sha256 of the manifest it must hold) as it is now,
    from one container that lists them all (stat only); volumes it cannot list are left out."""
    from docker.errors import ContainerError

    names = sorted(wanted)
    try:
        out = client.containers.run(
            image,
            remove=True,
            entrypoint=["python3", "-c", LISTINGS, *names],
            user="0",
            network_disabled=True,
            volumes={name: {"bind": f"/v/{index}", "mode": "ro"} for index, name in enumerate(names)},
        )
    except ContainerError:
        return {}
    listed = {name: value for name, _, value in (line.partition(" ") for line in _text(out).splitlines())}
    return {name: seal(client, name, wanted[name], listed[name]) for name in names if name in listed}


def seal(client: DockerClient, volume: str, manifest_sha256: str, listed: str) -> str:
    """What a full check vouches for: this volume (its creation time, so a volume made again under the name
    differs), the manifest it holds and its listing."""
    created = str(client.volumes.get(volume).attrs.get("CreatedAt", ""))
    return hashlib.sha256("\0".join((volume, created, manifest_sha256, listed)).encode()).hexdigest()


def _drop_volume(client: DockerClient, name: str, manifest: Manifest) -> None:
    """Remove a volume that does not hold exactly `manifest`; refused while a container mounts it."""
    from docker.errors import APIError

    try:
        client.volumes.get(name).remove()
    except APIError as exc:
        raise ArtifactInUseError(
            f"volume {name} on the target should hold {manifest.ref} but holds something else, and a container"
            f" uses it ({exc.explanation or exc})",
            hint="remove the containers that mount it (`docker ps -a --filter volume=NAME`), then deploy again",
        ) from None


def secrets_volume(client: DockerClient, image: str, container: str, keys: list[str]) -> str:
    """A volume for container `container` with file `api_keys` (one key per line), readable only by the
    image's user."""
    name = volume_name("secrets", container)
    client.volumes.create(name, labels={"workbench.role": "secrets", "workbench.container": container})
    write_keys(client, image, name, keys)
    return name


def write_keys(client: DockerClient, image: str, volume: str, keys: list[str]) -> None:
    """Replace the `api_keys` file in `volume` with exactly `keys`."""
    uid = _image_uid(client, image)
    data = ("\n".join(keys) + "\n").encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo("api_keys")
        info.size, info.uid, info.mode = len(data), uid or 0, 0o400 if uid is not None else 0o444
        tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    _put(client, image, volume, archive)


def write_tls(client: DockerClient, image: str, cert: bytes, key: bytes) -> str:
    """Put `cert` (0444) and `key` (0400), both root's, into the proxy's TLS volume (made when missing), through
    a helper container of `image` that is never started; the key travels in the archive API's request body
    only (never an image layer, a label, argv or a log)."""
    if not client.volumes.list(filters={"name": f"^{TLS_VOLUME}$"}):
        client.volumes.create(TLS_VOLUME, labels={"workbench.role": "proxy-tls"})
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data, mode in ((TLS_CERT, cert, 0o444), (TLS_KEY, key, 0o400)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), mode, 0, 0
            tar.addfile(info, io.BytesIO(data))
    _put(client, image, TLS_VOLUME, archive)
    return TLS_VOLUME


def remove_tls(client: DockerClient) -> None:
    """Remove the proxy's TLS volume (certificate and key), if there is one and no container uses it."""
    from docker.errors import APIError

    for volume in client.volumes.list(filters={"name": f"^{TLS_VOLUME}$"}):
        with contextlib.suppress(APIError):
            volume.remove()


def secrets_of(container: Any) -> str | None:
    """The secrets volume `container` mounts, or None."""
    for mount in container.attrs.get("Mounts") or []:
        if mount.get("Destination") == SECRETS_DEST and mount.get("Type") == "volume":
            return str(mount.get("Name"))
    return None


def remove_secrets(client: DockerClient, container: str) -> None:
    """Remove every secrets volume made for `container` (by label, and by name for older ones)."""
    from docker.errors import APIError, NotFound

    found = client.volumes.list(filters={"label": ["workbench.role=secrets", f"workbench.container={container}"]})
    names = {v.name for v in found} | {volume_name("secrets", container)}
    for name in names:
        with contextlib.suppress(NotFound):
            try:
                client.volumes.get(name).remove(force=True)
            except APIError as exc:
                if exc.status_code != 404:
                    raise


def _put(client: DockerClient, image: str, volume: str, archive: Any) -> None:
    """Unpack `archive` into `volume` through a helper container that is never started."""
    helper = client.containers.create(image, volumes={volume: {"bind": "/dest", "mode": "rw"}}, entrypoint=["true"])
    try:
        archive.seek(0)
        helper.put_archive("/dest", archive)
    finally:
        helper.remove(force=True)


def _bad_files(client: DockerClient, image: str, volume: str, manifest_sha256: str) -> tuple[list[str], str]:
    """What in `volume` differs from the manifest whose bytes hash to `manifest_sha256` (checked on the
    target): a different manifest, files missing, changed or not listed; and the volume's listing."""
    from docker.errors import ContainerError

    try:
        out = client.containers.run(
            image,
            remove=True,
            entrypoint=["python3", "-c", VERIFY, manifest_sha256],
            user="0",
            network_disabled=True,
            volumes={volume: {"bind": "/dest", "mode": "ro"}},
        )
    except ContainerError as exc:
        out = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or "")
        return [line for line in out.splitlines() if line.strip()] or ["(the check failed)"], ""
    return [], _text(out).strip()


def _text(out: Any) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else str(out or "")


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
