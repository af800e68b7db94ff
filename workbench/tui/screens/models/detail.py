"""The detail pane of the Hub tab: card, files, size, licence, access and the fit estimate."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import AwaitMount
from textual.widgets import Input, Label, Static

from services.fit import FitEstimate, Verdict, Workload
from services.hub.details import ModelDetails
from services.units import human_bytes
from workbench.present.text import human_count

CARD_WARM_UP_S = 0.5
"""When the model card widget is mounted, hidden, after the pane first shows."""
CARD_WARM_UP = (
    "# h1\n\n## h2\n\n### h3\n\ntext `code`\n\n- item\n\n1. item\n\n"
    "```text\ncode\n```\n\n| a |\n| - |\n| b |\n\n> quote\n"
)
"""One block of each kind model cards use most. The fence names its language: an unnamed one makes Pygments
try every lexer (~0.1 s of CPU on the event loop, about when the user starts typing)."""

VERDICT_STYLE: dict[Verdict, str] = {
    "fits": "$success",
    "tight": "$warning",
    "does not fit": "$error",
    "needs CUDA": "$text-muted",
}
VERDICT_CLASS: dict[Verdict, str] = {
    "fits": "-fits",
    "tight": "-tight",
    "does not fit": "-no-fit",
    "needs CUDA": "-needs-cuda",
}


def access_line(details: ModelDetails, hub_url: str) -> Content:
    """Gating and whether the token may download, with the next step when it may not."""
    if not details.gated:
        return Content.from_markup("[$success]open[/]: no licence to accept")
    if details.access:
        return Content.from_markup("[$success]gated[/]: the token has access")
    return Content.from_markup(
        "[$error]gated, NO ACCESS[/]: accept the licence at $url and set HF_TOKEN (or `hf auth login`)",
        url=f"{hub_url}/{details.id}",
    )


def header_text(details: ModelDetails, hub_url: str) -> Content:
    chosen = [f for f in details.files if f.selected]
    facts = f"{details.task or '-'} · {details.library or '-'} · licence {details.license or '-'}"
    size = (
        f"parameters {human_count(details.params)} · download {human_bytes(details.download_bytes)}"
        f" ({len(chosen)} of {len(details.files)} files)"
    )
    title = Content.from_markup("[b]$id[/b] [$text-muted]@ $sha[/]", id=details.id, sha=details.sha[:12])
    return Content("\n").join([title, Content(facts), access_line(details, hub_url), Content(size)])


def fit_table(fit: FitEstimate) -> Content:
    """The scenarios as aligned lines with coloured verdicts."""
    w = fit.workload
    head = Content.from_markup(
        "[b]on $device[/b] ($memory) · seq $seq · batch $batch · LoRA r$rank",
        device=fit.device.name,
        memory=human_bytes(fit.device.memory_bytes),
        seq=w.seq_len,
        batch=w.batch_size,
        rank=w.lora_rank,
    )
    lines = [head]
    for row in fit.rows:
        lines.append(
            Content.assemble(
                f"  {row.scenario:<16} {human_bytes(row.bytes):>9}  ", (row.verdict, VERDICT_STYLE[row.verdict])
            )
        )
    return Content("\n").join(lines)


def files_text(details: ModelDetails) -> Content:
    lines = [Content.from_markup("[b]files[/b] ([$success]✓[/] downloaded by default)")]
    for f in details.files:
        mark = ("✓", "$success") if f.selected else ("·", "$text-muted")
        lines.append(Content.assemble(" ", mark, f" {f.path:<40} {human_bytes(f.size):>9}"))
    return Content("\n").join(lines)


def import_card_widget() -> None:
    """Import Textual's Markdown (markdown-it and its plugins, ~60 ms of CPU) from a worker thread, so the
    first model card shown never imports it on the UI thread (a frozen screen, maybe during a download)."""
    from textual.widgets import Markdown  # noqa: F401


class ModelDetail(Horizontal):
    """One model's facts and fit on the left, files and card on the right.

    Posts `WorkloadChanged` when the fit inputs change.
    """

    @dataclass
    class WorkloadChanged(Message):
        """The sequence length or batch size of the fit estimate changed."""

        workload: Workload

    def __init__(self, workload: Workload, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._workload = workload
        self.verdict: Verdict | None = None
        """The badge shown: the verdict of the lightest scenario, None when unknown."""
        self._mounting: list[AwaitMount] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-facts"):
            yield Static("Highlight a model to see its details.", id="detail-head")
        # The fit inputs and the files column come with the first model shown (`build`): the first frame,
        # and a session with the hub offline, do without their nine widgets.

    def build(self) -> None:
        """Mount the fit bar, the fit table and the files column, once; `ready` waits for them."""
        if self._mounting:
            return
        fit_bar = Horizontal(
            Label(" fit ", id="fit-badge"),
            Label("seq", classes="fit-label"),
            Input(str(self._workload.seq_len), type="integer", compact=True, id="fit-seq"),
            Label("batch", classes="fit-label"),
            Input(str(self._workload.batch_size), type="integer", compact=True, id="fit-batch"),
            id="fit-bar",
        )
        facts = self.query_one("#detail-facts", VerticalScroll)
        self._mounting = [
            facts.mount(fit_bar, Static("", id="fit-table")),
            self.mount(VerticalScroll(Static("", id="detail-files"), id="detail-more")),
        ]
        self.set_timer(CARD_WARM_UP_S, self._mount_card)

    async def ready(self) -> None:
        """Build the pane if needed and wait until its widgets are mounted."""
        self.build()
        for mounting in self._mounting:
            await mounting

    @property
    def workload(self) -> Workload:
        return self._workload

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        seq, batch = self.query_one("#fit-seq", Input).value, self.query_one("#fit-batch", Input).value
        if not (seq.isdigit() and batch.isdigit()) or int(seq) < 1 or int(batch) < 1:
            return
        workload = Workload(seq_len=int(seq), batch_size=int(batch))
        if workload != self._workload:
            self._workload = workload
            self.post_message(self.WorkloadChanged(workload))

    def show_loading(self, repo_id: str) -> None:
        self.build()
        self.query_one("#detail-head", Static).update(Content.from_markup("[b]$id[/b]\nloading…", id=repo_id))

    def show_details(self, details: ModelDetails, fit: FitEstimate | None, hub_url: str) -> None:
        self.query_one("#detail-head", Static).update(header_text(details, hub_url))
        self.query_one("#detail-files", Static).update(files_text(details))
        self._show_card(details.card or "*No model card.*")
        self.show_fit(fit)

    def _mount_card(self) -> None:
        """Mount the card, hidden, with one block of each common kind once the pane is built:
        the first mount of each block kind adds its styles to the app and restyles the screen, a pause
        (~0.1 s) the user would otherwise feel when the first card shows, maybe during a download."""
        from textual.widgets import Markdown

        if not self.query("#detail-card"):
            card = Markdown(CARD_WARM_UP, id="detail-card")
            card.display = False
            self.query_one("#detail-more", VerticalScroll).mount(card)

    def _show_card(self, markdown: str) -> None:
        """Show the model card; its widget is created on first use so Markdown stays off the start path.

        The first card is passed to the constructor: an update before the mount completes is lost.
        """
        from textual.widgets import Markdown

        found = self.query("#detail-card")
        if found:
            card = found.first(Markdown)
            card.display = True
            card.update(markdown)
        else:
            self.query_one("#detail-more", VerticalScroll).mount(Markdown(markdown, id="detail-card"))

    def show_fit(self, fit: FitEstimate | None) -> None:
        badge = self.query_one("#fit-badge", Label)
        badge.remove_class(*VERDICT_CLASS.values())
        self.verdict = fit.badge() if fit is not None else None
        if fit is None:
            badge.update(" fit unknown ")
            self.query_one("#fit-table", Static).update("no config.json with transformer dimensions")
            return
        badge.update(f" {fit.badge()} ")
        badge.add_class(VERDICT_CLASS[fit.badge()])
        self.query_one("#fit-table", Static).update(fit_table(fit))
