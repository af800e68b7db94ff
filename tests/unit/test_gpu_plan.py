"""The preflight against the devices a job may get: the most free ones, as many as it asks for."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from services.demo import DemoWorkspace, init_demo
from services.finetune.plan import gpu_count_refusal, make_plan, requested_gpus
from services.finetune.spec import JobSpec, parse_spec
from services.gpu import Gpu
from tests.fakes import gpus as fakes
from tests.fakes.gpus import FakeGpus, gpu, mig_slice

fake_gpus = fakes.fake_gpus  # the fixture

GIB = 1024**3


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoWorkspace:
    root = tmp_path_factory.mktemp("demo")
    return init_demo(cache_dir=root / "hub", data_dir=root / "data")


def job(demo: DemoWorkspace, **training: object) -> JobSpec:
    data = {"name": "p", "model": {"id": demo.model}, "dataset": {"path": demo.dataset}, "training": training}
    return parse_spec(data, source="test")


def h200(index: int, free_gib: int) -> Gpu:
    return Gpu(index, "NVIDIA H200", 141 * GIB, free_gib * GIB, uuid=f"GPU-{index}", used_bytes=(141 - free_gib) * GIB)


def test_plan_checks_the_most_free_gpu_not_device_zero(demo: DemoWorkspace) -> None:
    plan = make_plan(job(demo), cache_dir=Path(demo.cache_dir), gpus=[h200(0, 1), h200(1, 90)])
    assert plan.device.memory_bytes == 90 * GIB and "GPU 1" in plan.device.name
    assert plan.refusal is None


def test_a_two_process_job_is_checked_against_the_lesser_of_the_two_most_free(demo: DemoWorkspace) -> None:
    gpus = [h200(0, 1), h200(1, 90), h200(2, 60)]
    plan = make_plan(job(demo, num_processes=2), cache_dir=Path(demo.cache_dir), gpus=gpus)
    assert plan.device.memory_bytes == 60 * GIB and plan.refusal is None


def test_more_processes_than_gpus_is_refused_with_the_count_found(demo: DemoWorkspace) -> None:
    plan = make_plan(job(demo, num_processes=3), cache_dir=Path(demo.cache_dir), gpus=[h200(0, 90), h200(1, 90)])
    assert plan.refusal is not None and "this machine has 2 GPU device(s)" in plan.refusal
    assert "at most 2" in plan.refusal and not plan.fits


def test_several_processes_on_a_cpu_machine_are_not_refused(demo: DemoWorkspace) -> None:
    plan = make_plan(job(demo, num_processes=2), cache_dir=Path(demo.cache_dir), gpus=[])
    assert plan.refusal is None and not plan.device.cuda


def test_plan_detects_the_devices_through_nvidia_smi(demo: DemoWorkspace, fake_gpus: FakeGpus) -> None:
    fake_gpus([gpu(0, free_mib=2048), gpu(1, free_mib=100_000)])
    plan = make_plan(job(demo), cache_dir=Path(demo.cache_dir))
    assert plan.device.memory_bytes == 100_000 * 1024**2 and plan.device.cuda


def test_mig_instances_serve_single_gpu_jobs_only(demo: DemoWorkspace, fake_gpus: FakeGpus) -> None:
    fake_gpus([gpu(0, mig=[mig_slice(0), mig_slice(1, used_mib=70_000)])])
    plan = make_plan(job(demo), cache_dir=Path(demo.cache_dir))
    assert plan.device.memory_bytes == 71680 * 1024**2 and mig_slice(0)["uuid"] in plan.device.name
    two = make_plan(job(demo, num_processes=2), cache_dir=Path(demo.cache_dir))
    assert two.refusal is not None and "MIG instances serve one single-GPU job each" in two.refusal


@pytest.mark.parametrize(("gpus", "processes", "count"), [(None, 2, 2), ("all", 1, 3), (2, 1, 2)])
def test_requested_gpus_reads_the_optional_gpus_field(gpus: object, processes: int, count: int) -> None:
    spec = SimpleNamespace(training=SimpleNamespace(gpus=gpus, num_processes=processes))
    assert requested_gpus(spec, [h200(0, 1), h200(1, 1), h200(2, 1)]) == count  # type: ignore[arg-type]


def test_fewer_gpus_than_processes_is_refused() -> None:
    spec = SimpleNamespace(training=SimpleNamespace(gpus=1, num_processes=2))
    refusal = gpu_count_refusal(spec, [h200(0, 1), h200(1, 1)])  # type: ignore[arg-type]
    assert refusal is not None and "one process per GPU" in refusal
