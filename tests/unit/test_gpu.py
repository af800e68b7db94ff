"""GPU detection through a real `nvidia-smi` process (the fake in tests/fakes) when NVML is missing."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from services.gpu import MIB, Gpu, GpuUsage, describe, detect_gpus, gpu_usage, most_free, parse_int, visible_devices
from tests.fakes import gpus as fakes
from tests.fakes.gpus import FakeGpus, gpu, mig_slice

fake_gpus = fakes.fake_gpus  # the fixture

UUID0 = "GPU-00000000-0000-0000-0000-000000000000"
UUID1 = "GPU-00000000-0000-0000-0000-000000000001"


def test_several_gpus_with_uuid_memory_and_utilisation(fake_gpus: FakeGpus) -> None:
    fake_gpus([gpu(0, used_mib=3771, utilisation=87), gpu(1, free_mib=1024)])
    gpus = detect_gpus()
    assert gpus == [
        Gpu(0, "NVIDIA H200", 143771 * MIB, 140000 * MIB, uuid=UUID0, used_bytes=3771 * MIB, utilisation_pct=87),
        Gpu(1, "NVIDIA H200", 143771 * MIB, 1024 * MIB, uuid=UUID1, used_bytes=142747 * MIB, utilisation_pct=0),
    ]
    assert describe(gpus) == "2× NVIDIA H200 · 136.7 GiB free"
    assert visible_devices(most_free(gpus, 1)) == UUID0
    assert [g.index for g in most_free(gpus, 5)] == [0, 1]


def test_not_available_utilisation_is_none_and_usage_reads_it_as_idle(fake_gpus: FakeGpus) -> None:
    fake_gpus([gpu(0, used_mib=3771, utilisation=87), gpu(1, free_mib=1024, utilisation="[N/A]")])
    assert detect_gpus()[1].utilisation_pct is None
    assert gpu_usage() == [
        GpuUsage(0, 87, 3771 * MIB, 143771 * MIB),
        GpuUsage(1, 0, 142747 * MIB, 143771 * MIB),
    ]


def test_mig_instances_are_devices_of_their_own(fake_gpus: FakeGpus) -> None:
    slices = [mig_slice(0, used_mib=1000), mig_slice(1)]
    fake_gpus([gpu(0, name="NVIDIA A100", mig=slices), gpu(1, name="NVIDIA A100")])
    first, second, whole = detect_gpus()
    assert first == Gpu(
        0,
        "NVIDIA A100 MIG 3g.71gb",
        71680 * MIB,
        70680 * MIB,
        uuid=slices[0]["uuid"],
        used_bytes=1000 * MIB,
        utilisation_pct=None,
        mig=True,
    )
    assert second.mig and second.uuid == slices[1]["uuid"] and second.free_bytes == 71680 * MIB
    assert whole.uuid == UUID1 and not whole.mig
    assert visible_devices([first]) == slices[0]["uuid"]


def test_mig_mode_without_instances_gives_no_device(fake_gpus: FakeGpus, caplog: pytest.LogCaptureFixture) -> None:
    fake_gpus([{**gpu(0), "mig_mode": "Enabled"}, gpu(1)])
    with caplog.at_level(logging.WARNING, logger="services.gpu"):
        assert [g.uuid for g in detect_gpus()] == [UUID1]
    assert "GPU 0 is in MIG mode without usable MIG instances" in caplog.text


@pytest.mark.parametrize("bad", ["[N/A]", "[Not Supported]", "garbage", ""])
def test_unreadable_memory_leaves_the_device_out_with_a_warning(
    fake_gpus: FakeGpus, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    fake_gpus([gpu(0, total_mib=bad, free_mib=bad, used_mib=bad), gpu(1)])
    with caplog.at_level(logging.WARNING, logger="services.gpu"):
        assert [g.uuid for g in detect_gpus()] == [UUID1]
    assert "GPU 0 left out" in caplog.text


def test_mig_memory_not_reported_leaves_that_instance_out(
    fake_gpus: FakeGpus, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {**mig_slice(0), "memory_total": "[N/A]"}
    fake_gpus([gpu(0, mig=[broken, mig_slice(1)])])
    with caplog.at_level(logging.WARNING, logger="services.gpu"):
        assert [g.uuid for g in detect_gpus()] == [mig_slice(1)["uuid"]]
    assert f"MIG device {broken['uuid']} left out" in caplog.text


def test_tool_failing_is_cpu_only_with_a_warning(fake_gpus: FakeGpus, caplog: pytest.LogCaptureFixture) -> None:
    fake_gpus(fail="NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    with caplog.at_level(logging.WARNING, logger="services.gpu"):
        assert detect_gpus() == [] and gpu_usage() == []
    assert "couldn't communicate" in caplog.text


def test_no_nvml_and_no_tool_is_cpu_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert detect_gpus() == [] and gpu_usage() == []
    assert describe([]) == "CPU only"


@pytest.mark.parametrize(("text", "value"), [("87", 87), ("[N/A]", None), (" 3 ", 3), ("-1", None), ("1e3", None)])
def test_parse_int_never_raises(text: str, value: int | None) -> None:
    assert parse_int(text) == value


def test_without_the_drivers_library_pynvml_is_not_imported(
    fake_gpus: FakeGpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_gpus([gpu(0)])
    monkeypatch.setattr("services.gpu.NVML_LIBRARY", "libnvidia-ml-absent.so.1")
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())  # would answer two other GPUs if asked
    assert [g.uuid for g in detect_gpus()] == [UUID0]  # nvidia-smi's answer


class _NvmlError(Exception):
    pass


class _Memory:
    total, used, free = 80 * 1024 * MIB, 1024 * MIB, 79 * 1024 * MIB


class _FakeNvml:
    """The part of pynvml that detection calls: GPU 0 whole, GPU 1 in MIG mode with one instance."""

    NVMLError = _NvmlError
    NVML_DEVICE_MIG_ENABLE = 1

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetMigMode(self, handle: str) -> tuple[int, int]:
        if handle == "gpu0":
            raise _NvmlError("Not Supported")
        return (1, 1)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: str) -> int:
        return 2

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: str, slot: int) -> str:
        if slot == 1:
            raise _NvmlError("Not Found")
        return f"{handle}-mig{slot}"

    def nvmlDeviceGetName(self, handle: str) -> bytes:
        return f"NVIDIA H100 {handle}".encode()

    def nvmlDeviceGetUUID(self, handle: str) -> str:
        return ("MIG-" if "mig" in handle else "GPU-") + handle

    def nvmlDeviceGetMemoryInfo(self, handle: str) -> _Memory:
        return _Memory()

    def nvmlDeviceGetUtilizationRates(self, handle: str) -> object:
        if "mig" in handle:
            raise _NvmlError("Not Supported")
        return type("Rates", (), {"gpu": 42})()


def test_nvml_lists_whole_gpus_and_mig_instances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.gpu.NVML_LIBRARY", "libc.so.6")  # a library that loads, standing for the driver's
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    whole, mig = detect_gpus()
    assert (whole.uuid, whole.utilisation_pct, whole.mig, whole.free_bytes) == ("GPU-gpu0", 42, False, 79 * 1024 * MIB)
    assert (mig.index, mig.uuid, mig.utilisation_pct, mig.mig) == (1, "MIG-gpu1-mig0", None, True)
