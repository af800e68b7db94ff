"""Detect GPUs through NVML (nvidia-ml-py), falling back to `nvidia-smi`; neither present means CPU only.

Every device a CUDA process can be given is one `Gpu`: a whole GPU, or each MIG instance of a GPU
in MIG mode (the GPU itself is then not listed, since CUDA cannot use it as a whole). A device's
`uuid` is what `CUDA_VISIBLE_DEVICES` takes for either kind. Answers the tools give as `[N/A]`,
`[Not Supported]` or anything else that is not a number become None (utilisation) or leave the
device out with a logged warning (memory, identity): a scheduler never gets a guessed figure.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MIB = 1024**2
NVML_LIBRARY = "libnvidia-ml.so.1"
"""The driver's NVML library, which pynvml loads by this name on Linux."""
SMI_TIMEOUT_S = 5
SMI_FIELDS = "index,uuid,name,memory.total,memory.used,memory.free,utilization.gpu,mig.mode.current"
# `nvidia-smi -L`: "  MIG 3g.20gb     Device  0: (UUID: MIG-...)" under "GPU 0: NAME (UUID: GPU-...)"
_L_GPU = re.compile(r"^GPU (\d+): (.+?) \(UUID: (GPU-[0-9A-Za-z-]+)\)\s*$")
_L_MIG = re.compile(r"^\s+MIG (\S+)\s+Device\s+(\d+): \(UUID: (MIG-[0-9A-Za-z/-]+)\)\s*$")
_MIB_TEXT = re.compile(r"^\s*(\d+)\s*MiB\s*$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gpu:
    """One device a job can be assigned: a whole GPU or one MIG instance; memory in bytes."""

    index: int
    """The physical GPU's index (a MIG instance carries its parent's)."""
    name: str
    total_bytes: int
    free_bytes: int
    uuid: str = ""
    """`GPU-...` or `MIG-...`: the value for `CUDA_VISIBLE_DEVICES`."""
    used_bytes: int = 0
    utilisation_pct: int | None = None
    """Busy percentage; None where the tool cannot say (MIG instances, `[N/A]`)."""
    mig: bool = False
    """A MIG instance rather than a whole GPU."""

    @property
    def visible_id(self) -> str:
        """This device's entry in `CUDA_VISIBLE_DEVICES` (the uuid; the index when none is known)."""
        return self.uuid or str(self.index)


@dataclass(frozen=True)
class GpuUsage:
    """What one GPU is doing right now (the Fine-tune mode's live panel)."""

    index: int
    utilisation_pct: int
    used_bytes: int
    total_bytes: int


def detect_gpus() -> list[Gpu]:
    """Every device a CUDA process can be given, whole GPUs and MIG instances; [] without one."""
    found = _nvml_devices()
    return found if found is not None else _smi_devices()


def gpu_usage() -> list[GpuUsage]:
    """Utilisation (0 where unknown) and memory in use of every device; an empty list without one."""
    return [GpuUsage(g.index, g.utilisation_pct or 0, g.used_bytes, g.total_bytes) for g in detect_gpus()]


def visible_devices(gpus: Iterable[Gpu]) -> str:
    """The `CUDA_VISIBLE_DEVICES` value that gives a process exactly these devices.

    CUDA enumerates at most one MIG instance per process, so a job is given one MIG device or
    whole GPUs, never several MIG instances."""
    return ",".join(g.visible_id for g in gpus)


def most_free(gpus: Iterable[Gpu], count: int) -> list[Gpu]:
    """The `count` devices with the most free memory (fewer when the machine has fewer)."""
    return sorted(gpus, key=lambda g: (-g.free_bytes, g.index, g.uuid))[: max(count, 0)]


def describe(gpus: list[Gpu]) -> str:
    """One line for a status bar, e.g. "NVIDIA H100 80GB HBM3 · 79.1 GiB free" or "CPU only"."""
    if not gpus:
        return "CPU only"
    first = gpus[0]
    count = f"{len(gpus)}× " if len(gpus) > 1 else ""
    return f"{count}{first.name} · {first.free_bytes / 1024**3:.1f} GiB free"


def parse_int(text: object) -> int | None:
    """A tool's integer answer, or None for `[N/A]`, `[Not Supported]`, blanks and anything else."""
    value = str(text).strip()
    return int(value) if value.isdecimal() else None


# --- NVML -------------------------------------------------------------------------------------


def _nvml_devices() -> list[Gpu] | None:
    """Devices through NVML; None when NVML is missing or does not start (then ask nvidia-smi)."""
    if not _nvml_library_loads():
        return None
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        return [gpu for i in range(pynvml.nvmlDeviceGetCount()) for gpu in _nvml_index(pynvml, i)]
    except pynvml.NVMLError as error:
        log.warning("NVML could not count the GPUs (%s); asking nvidia-smi", error)
        return None
    finally:
        pynvml.nvmlShutdown()


def _nvml_library_loads() -> bool:
    """Whether the driver's NVML library loads: without it pynvml is not imported (~10 ms of each
    start of the TUI on a machine without a GPU)."""
    if sys.platform != "linux":
        return True  # pynvml knows where the library lies elsewhere
    import ctypes

    try:
        ctypes.CDLL(NVML_LIBRARY)
    except OSError:
        return False
    return True


def _nvml_index(pynvml: Any, index: int) -> list[Gpu]:
    """GPU `index` as one device, or its MIG instances; [] with a warning when NVML fails on it."""
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        if _nvml_mig_enabled(pynvml, handle):
            return _nvml_mig_children(pynvml, index, handle)
        return [_nvml_gpu(pynvml, index, handle, mig=False)]
    except pynvml.NVMLError as error:
        log.warning("GPU %d left out: NVML could not read it (%s)", index, error)
        return []


def _nvml_mig_enabled(pynvml: Any, handle: Any) -> bool:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:  # not MIG-capable
        return False
    return bool(current == pynvml.NVML_DEVICE_MIG_ENABLE)


def _nvml_mig_children(pynvml: Any, index: int, handle: Any) -> list[Gpu]:
    children = []
    for slot in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            child = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, slot)
        except pynvml.NVMLError:  # an empty slot
            continue
        children.append(_nvml_gpu(pynvml, index, child, mig=True))
    if not children:
        log.warning("GPU %d is in MIG mode without MIG instances: no device to use", index)
    return children


def _nvml_gpu(pynvml: Any, index: int, handle: Any, *, mig: bool) -> Gpu:
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    return Gpu(
        index,
        _text(pynvml.nvmlDeviceGetName(handle)),
        int(memory.total),
        int(memory.free),
        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
        used_bytes=int(memory.used),
        utilisation_pct=_nvml_call(pynvml, lambda: int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        mig=mig,
    )


def _nvml_call(pynvml: Any, read: Callable[[], int]) -> int | None:
    try:
        return read()
    except pynvml.NVMLError:  # NotSupported on MIG instances
        return None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- nvidia-smi -------------------------------------------------------------------------------


def _smi_devices() -> list[Gpu]:
    """Devices through `nvidia-smi`; [] without the tool or when it fails."""
    rows = _smi_rows(SMI_FIELDS)
    whole = [gpu for row in rows if (gpu := _smi_gpu(row)) is not None]
    mig_parents = [row for row in rows if len(row) == 8 and row[7] == "Enabled"]
    if not mig_parents:
        return whole
    children = _smi_mig_devices()
    result: list[Gpu] = []
    for row in rows:
        if row in mig_parents:
            result.extend(_mig_children_of(row, children))
        else:
            result.extend(g for g in whole if g.index == parse_int(row[0]))
    return result


def _smi_run(*args: str) -> str | None:
    """The stdout of `nvidia-smi ARGS`, or None (with a warning if it ran and failed)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        return subprocess.run([smi, *args], capture_output=True, text=True, timeout=SMI_TIMEOUT_S, check=True).stdout
    except subprocess.CalledProcessError as error:
        log.warning("nvidia-smi %s failed (exit %s): %s", " ".join(args), error.returncode, error.stderr.strip())
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("nvidia-smi %s did not answer: %s", " ".join(args), error)
    return None


def _smi_rows(fields: str) -> list[list[str]]:
    """`nvidia-smi --query-gpu=FIELDS` as rows of stripped strings; [] without the tool."""
    out = _smi_run(f"--query-gpu={fields}", "--format=csv,noheader,nounits") or ""
    return [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]


def _smi_gpu(row: list[str]) -> Gpu | None:
    """One `SMI_FIELDS` row as a whole GPU, or None (with a warning) when a needed field is not a number."""
    if len(row) != 8:
        log.warning("nvidia-smi row left out: %d fields instead of 8: %r", len(row), row)
        return None
    index, uuid, name, total, used, free, util, _mig = row
    numbers = [parse_int(index), parse_int(total), parse_int(used), parse_int(free)]
    if any(n is None for n in numbers) or not uuid.startswith("GPU-"):
        log.warning("GPU %s left out: nvidia-smi gave no usable index, uuid or memory: %r", index, row)
        return None
    i, t, u, f = (n or 0 for n in numbers)
    return Gpu(i, name, t * MIB, f * MIB, uuid=uuid, used_bytes=u * MIB, utilisation_pct=parse_int(util))


@dataclass(frozen=True)
class _MigEntry:
    parent_uuid: str
    device: int
    profile: str
    uuid: str


def _smi_mig_devices() -> dict[tuple[str, int], tuple[_MigEntry, tuple[int, int, int] | None]]:
    """MIG instances by (parent uuid, device number): `-L` for identity, `-q -x` for memory (MiB)."""
    entries = _parse_listing(_smi_run("-L") or "")
    memory = _parse_mig_memory(_smi_run("-q", "-x") or "")
    return {(e.parent_uuid, e.device): (e, memory.get((e.parent_uuid, e.device))) for e in entries}


def _parse_listing(text: str) -> list[_MigEntry]:
    entries, parent = [], ""
    for line in text.splitlines():
        if gpu := _L_GPU.match(line):
            parent = gpu.group(3)
        elif (mig := _L_MIG.match(line)) and parent:
            entries.append(_MigEntry(parent, int(mig.group(2)), mig.group(1), mig.group(3)))
    return entries


def _parse_mig_memory(text: str) -> dict[tuple[str, int], tuple[int, int, int]]:
    """(total, used, free) MiB of each MIG device in `nvidia-smi -q -x`; {} when unreadable."""
    import xml.etree.ElementTree as ET  # only on machines with MIG: off the TUI's start path

    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return {}
    found = {}
    for gpu in root.iter("gpu"):
        parent = (gpu.findtext("uuid") or "").strip()
        for device in gpu.iter("mig_device"):
            number = parse_int(device.findtext("index"))
            figures = [_mib(device.findtext(f"fb_memory_usage/{key}")) for key in ("total", "used", "free")]
            if number is not None and all(f is not None for f in figures):
                found[(parent, number)] = (figures[0] or 0, figures[1] or 0, figures[2] or 0)
    return found


def _mib(text: str | None) -> int | None:
    match = _MIB_TEXT.match(text or "")
    return int(match.group(1)) if match else None


def _mig_children_of(row: list[str], children: dict[tuple[str, int], Any]) -> list[Gpu]:
    index, uuid, name = parse_int(row[0]), row[1], row[2]
    result = []
    for (parent, _number), (entry, memory) in sorted(children.items()):
        if parent != uuid:
            continue
        if memory is None or index is None:
            log.warning("MIG device %s left out: nvidia-smi reported no memory for it", entry.uuid)
            continue
        total, used, free = memory
        label = f"{name} MIG {entry.profile}"
        result.append(Gpu(index, label, total * MIB, free * MIB, uuid=entry.uuid, used_bytes=used * MIB, mig=True))
    if not result:
        log.warning("GPU %s is in MIG mode without usable MIG instances: no device to use", row[0])
    return result
