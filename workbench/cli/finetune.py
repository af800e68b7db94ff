"""`workbench finetune ...`: job files, preflight, detached runs and watching them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from workbench.cli.context import Context, pass_context


@click.group()
def finetune() -> None:
    """PEFT LoRA/QLoRA fine-tunes that keep running when the terminal goes away."""


@finetune.command("init")
@click.option("--model", "model_id", help="Base model (HF cache repo id or folder). Default: the demo model.")
@click.option("--dataset", help="JSONL/CSV/Parquet file. Default: the demo dataset.")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("job.toml"),
    show_default=True,
    help="Where to write the job file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_context
def finetune_init(obj: Context, model_id: str | None, dataset: str | None, output: Path, force: bool) -> None:
    """Write a commented job file with defaults for the model (without --model and --dataset: the
    demo job, which visibly learns the demo dataset)."""
    from services.demo import DEMO_MODEL, demo_job_toml, is_demo_dataset
    from services.errors import UsageError
    from services.finetune.template import commented_toml, default_spec
    from workbench.usecases.finetune import cached_model_folder

    if output.exists() and not force:
        raise UsageError(f"{output} exists", hint="pass --force to overwrite it, or -o another file")
    model_id = model_id or DEMO_MODEL
    dataset = dataset or str(obj.settings.workspace.data_dir / "demo" / "instructions.jsonl")
    folder = cached_model_folder(obj.services, model_id)  # not cached yet: defaults without its config
    if model_id == DEMO_MODEL and is_demo_dataset(dataset):
        output.write_text(demo_job_toml(Path(dataset), folder))
    else:
        output.write_text(commented_toml(default_spec(model_id, dataset, model_folder=folder)))
    click.echo(f"wrote {output}: check it with `workbench finetune plan {output}`")


@finetune.command("plan")
@click.argument("job_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_context
def finetune_plan(obj: Context, job_file: Path, as_json: bool) -> None:
    """Preflight: data check, examples, token lengths, parameters, memory and disk."""
    from services.finetune.plan import make_plan
    from services.finetune.spec import load_spec
    from workbench.present import finetune as render_finetune

    plan = make_plan(load_spec(job_file), cache_dir=obj.cache_dir())
    click.echo(render_finetune.plan_json(plan) if as_json else render_finetune.plan_text(plan))
    if plan.refusal:
        sys.exit(1)


@finetune.command("run")
@click.argument("job_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--follow", "-f", is_flag=True, help="Stay and print metrics until the job ends.")
@pass_context
def finetune_run(obj: Context, job_file: Path, follow: bool) -> None:
    """Check the job, then launch it detached (it survives logout; queued if the GPU is busy)."""
    from services.finetune.spec import load_spec
    from workbench.usecases.finetune import submit

    job = submit(obj.services, load_spec(job_file))
    folder = job.folder
    click.echo(f"launched {folder.name} (pid {job.pid}) in {folder}")
    click.echo(f"watch it: workbench finetune show {folder.name} · workbench finetune logs -f {folder.name}")
    if follow:
        _follow(folder)


@finetune.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of jobs.")
@pass_context
def finetune_ls(obj: Context, as_json: bool) -> None:
    """List jobs: status, progress, ETA, last loss."""
    from services.finetune.jobs import list_jobs
    from workbench.present import finetune as render_finetune

    views = list_jobs(obj.settings.workspace.data_dir)
    click.echo(render_finetune.jobs_json(views) if as_json else render_finetune.jobs_table(views))


@finetune.command("show")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True, help="Print the job, its status and metrics as JSON.")
@pass_context
def finetune_show(obj: Context, job: str, as_json: bool) -> None:
    """One job: status, progress, loss curve summary, adapter."""
    from services.finetune.jobs import job_view, read_metrics
    from workbench.present import finetune as render_finetune
    from workbench.usecases.finetune import job_folder

    folder = job_folder(obj.services, job)
    view, metrics = job_view(folder), read_metrics(folder)
    click.echo(render_finetune.job_json(view, metrics) if as_json else render_finetune.job_text(view, metrics))


@finetune.command("logs")
@click.argument("job")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
@click.option("--lines", "-n", type=click.IntRange(1), default=40, show_default=True)
@pass_context
def finetune_logs(obj: Context, job: str, follow: bool, lines: int) -> None:
    """The trainer's log."""
    from services.finetune.watch import log_tail
    from workbench.usecases.finetune import follow_log, job_folder

    folder = job_folder(obj.services, job)
    log = folder / "train.log"
    offset = log.stat().st_size if log.exists() else 0
    click.echo("\n".join(log_tail(folder, lines)))
    if follow:
        for text in follow_log(folder, offset=offset):
            click.echo(text, nl=False)


@finetune.command("cancel")
@click.argument("job")
@click.option(
    "--grace",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the checkpoint before killing.",
)
@pass_context
def finetune_cancel(obj: Context, job: str, grace: float) -> None:
    """Stop a job gracefully (checkpoint saved), forcing it after --grace seconds."""
    from workbench.usecases.finetune import cancel

    status = cancel(obj.services, job, grace_s=grace)
    click.echo(f"{job}: {status.state} at step {status.step}")


@finetune.command("resume")
@click.argument("job")
@click.option("--follow", "-f", is_flag=True, help="Stay and print metrics until the job ends.")
@pass_context
def finetune_resume(obj: Context, job: str, follow: bool) -> None:
    """Continue a cancelled or failed job from its latest checkpoint (same step count)."""
    from workbench.usecases.finetune import resume

    resumed = resume(obj.services, job)
    click.echo(f"resumed {resumed.folder.name} (pid {resumed.pid})")
    if follow:
        _follow(resumed.folder)


def _follow(folder: Path) -> None:
    from workbench.usecases.finetune import final_status, follow_metrics

    for row in follow_metrics(folder):
        click.echo(json.dumps(row))
    status = final_status(folder)
    click.echo(f"{folder.name}: {status.state}" + (f": {status.error}" if status.error else ""))
    sys.exit(0 if status.state == "completed" else 1)


@finetune.command("merge")
@click.argument("job")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), help="Default: JOB_FOLDER/merged.")
@pass_context
def finetune_merge(obj: Context, job: str, output: Path | None) -> None:
    """Merge the job's adapter into the base model, save it as safetensors and register it as an artifact."""
    from workbench.usecases.finetune import merge

    merged = merge(obj.services, job, output=output)
    click.echo(f"merged model saved to {merged.folder}; artifact merged-model {merged.artifact.ref}")
