"""Concurrent requests share batched `generate` calls: each keeps its own stream, length and stop.

The engine tests force batches without timing: a long collection window and a `max_batch` equal
to the number of requests, so a batch runs exactly when the last of them is queued.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chatbot.app import Resources, create_app
from chatbot.batching import BatchConfig, Scheduler, Ticket
from chatbot.engine import Event, Generation, GenerationParams, LanguageModel, Outcome
from chatbot.padded import Progress, RowState, gives_way
from chatbot.settings import Settings
from chatbot_support import CANARY_KEY, ask

QUESTIONS = [
    "How is a release rolled back?",
    "hi",
    "What does a fine-tune need before it is launched on the GPU machine?",
    "Who owns the ingest pipeline?",
]
AUTH = {"Authorization": f"Bearer {CANARY_KEY}"}


def model_like(lm: LanguageModel, **batching: Any) -> LanguageModel:
    """A language model sharing `lm`'s weights and tokenizer, batching as told."""
    return LanguageModel(lm.model, lm.tokenizer, lm.adapter, lm.quantized, BatchConfig(**batching))


class Collected:
    """A sink that keeps the text pieces and the outcome of one generation."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.outcome: Outcome | None = None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Outcome):
            self.outcome = event
        else:
            self.pieces.append(event)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def submit(
    lm: LanguageModel, question: str, params: GenerationParams, ticket: Ticket | None = None
) -> tuple[Generation, Collected]:
    """Queue `question`, releasing its `ticket` when it was announced (`LanguageModel.coming`)."""
    sink = Collected()
    inputs = lm.encode(lm.render([{"role": "user", "content": question}]))
    return lm.start(inputs, params, deadline=time.monotonic() + 120, sink=sink, ticket=ticket), sink


def wait_all(generations: list[Generation]) -> None:
    for generation in generations:
        assert generation.done.wait(120), "a generation did not end"


@pytest.fixture(scope="module")
def lm(loaded: tuple[Resources, str, str]) -> LanguageModel:
    return loaded[0].lm


def test_greedy_answers_are_the_same_alone_and_in_a_batch(lm: LanguageModel) -> None:
    lengths = [6, 17, 11, 24]
    alone = model_like(lm, max_batch=1)
    singles = []
    for question, length in zip(QUESTIONS, lengths, strict=True):
        generation, sink = submit(alone, question, GenerationParams(length))
        wait_all([generation])
        singles.append(sink)

    together = model_like(lm, window_s=600, max_batch=len(QUESTIONS))
    batches: list[list[Generation]] = []
    together.scheduler.on_batch = batches.append
    runs = [submit(together, q, GenerationParams(n)) for q, n in zip(QUESTIONS, lengths, strict=True)]
    wait_all([generation for generation, _ in runs])

    assert [len(batch) for batch in batches] == [len(QUESTIONS)]
    for (_, batched), single, length in zip(runs, singles, lengths, strict=True):
        assert batched.text == single.text
        assert batched.outcome == single.outcome
        assert batched.outcome is not None
        assert batched.outcome.completion_tokens == length  # the demo model does not stop early
        assert batched.outcome.finish_reason == "length"
    assert len({sink.text for _, sink in runs}) > 1  # the prompts lead to different answers


def test_a_row_that_is_not_live_gets_the_same_text_in_one_piece(lm: LanguageModel) -> None:
    together = model_like(lm, window_s=600, max_batch=2)
    live, live_sink = submit(together, QUESTIONS[0], GenerationParams(24))
    whole, whole_sink = submit(together, QUESTIONS[0], GenerationParams(24, live=False))
    wait_all([live, whole])

    assert len(live_sink.pieces) > 1  # streamed word by word
    assert whole_sink.pieces == [live_sink.text]  # decoded once, when the row ended
    assert whole_sink.outcome == live_sink.outcome


def stopping_at_once(lm: LanguageModel, **batching: Any) -> LanguageModel:
    """`lm`'s weights with every token an end-of-sequence: each answer ends with its first token."""
    import copy

    model = copy.copy(lm.model)  # the same modules; its own generation config
    model.generation_config = copy.deepcopy(lm.model.generation_config)
    model.generation_config.eos_token_id = list(range(model.config.vocab_size))
    return LanguageModel(model, lm.tokenizer, lm.adapter, lm.quantized, BatchConfig(**batching))


def test_a_row_that_ignores_eos_runs_to_its_length_beside_one_that_stops(lm: LanguageModel) -> None:
    together = stopping_at_once(lm, window_s=600, max_batch=2)
    batches: list[list[Generation]] = []
    together.scheduler.on_batch = batches.append
    ends, ends_sink = submit(together, QUESTIONS[1], GenerationParams(8))
    goes_on, goes_on_sink = submit(together, QUESTIONS[1], GenerationParams(8, ignore_eos=True))
    wait_all([ends, goes_on])

    assert [len(batch) for batch in batches] == [2]
    assert ends_sink.outcome == Outcome(ends.prompt_tokens, 1, "stop")
    assert goes_on_sink.outcome == Outcome(goes_on.prompt_tokens, 8, "length")


def test_ignore_eos_through_the_api(make_settings: Callable[..., Settings], loaded: tuple[Resources, str, str]) -> None:
    from fastapi.testclient import TestClient

    resources = loaded[0]
    lm = stopping_at_once(resources.lm, max_batch=1)
    app = create_app(make_settings(), loader=lambda settings: Resources(lm, None))
    with TestClient(app, headers=AUTH) as client:
        answers = [
            client.post("/v1/chat/completions", json=ask(QUESTIONS[1], max_tokens=8, **extra)).json()
            for extra in ({}, {"ignore_eos": True})
        ]

    assert [a["usage"]["completion_tokens"] for a in answers] == [1, 8]
    assert [a["choices"][0]["finish_reason"] for a in answers] == ["stop", "length"]


def test_different_sampling_settings_never_share_a_batch(lm: LanguageModel) -> None:
    scheduled = model_like(lm, window_s=600, max_batch=2)
    batches: list[list[Generation]] = []
    scheduled.scheduler.on_batch = batches.append
    settings = [
        GenerationParams(5),
        GenerationParams(5, temperature=0.7),
        GenerationParams(5, temperature=0.7, top_p=0.9),
        GenerationParams(5, temperature=0.9, seed=42),
        GenerationParams(5),
        GenerationParams(5, temperature=0.7),
        GenerationParams(5, temperature=0.7, top_p=0.9),
    ]
    runs = [submit(scheduled, QUESTIONS[i % len(QUESTIONS)], params) for i, params in enumerate(settings)]
    wait_all([generation for generation, _ in runs])

    assert sorted(len(batch) for batch in batches) == [1, 2, 2, 2]
    for batch in batches:
        assert len({(g.params.temperature, g.params.top_p, g.params.seed) for g in batch}) == 1
    assert all(sink.outcome and sink.outcome.completion_tokens == 5 for _, sink in runs)


def test_a_seeded_request_runs_alone_and_repeats_its_answer(lm: LanguageModel) -> None:
    scheduled = model_like(lm, window_s=0.05, max_batch=8)
    params = GenerationParams(12, temperature=1.5, seed=1234)
    first, first_sink = submit(scheduled, QUESTIONS[0], params)
    others = [submit(scheduled, q, GenerationParams(12, temperature=1.5))[0] for q in QUESTIONS]
    second, second_sink = submit(scheduled, QUESTIONS[0], params)
    wait_all([first, second, *others])

    assert first_sink.text == second_sink.text
    assert first_sink.outcome == second_sink.outcome


class CancelsOnFirstPiece(Collected):
    """Cancels its generation when the first piece of text arrives."""

    generation: Generation | None = None

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        if len(self.pieces) == 1 and self.generation is not None:
            self.generation.cancel()


def test_a_cancelled_row_stops_and_the_others_finish(lm: LanguageModel) -> None:
    scheduled = model_like(lm, window_s=600, max_batch=3)
    sink = CancelsOnFirstPiece()
    inputs = lm.encode(lm.render([{"role": "user", "content": QUESTIONS[0]}]))  # its answer streams line by line
    sink.generation = scheduled.start(inputs, GenerationParams(200), deadline=time.monotonic() + 120, sink=sink)
    runs = [submit(scheduled, q, GenerationParams(40)) for q in QUESTIONS[1:3]]
    wait_all([sink.generation, *(g for g, _ in runs)])

    assert sink.pieces
    assert sink.outcome is not None
    assert sink.outcome.finish_reason == "stop"
    assert sink.outcome.completion_tokens < 200
    assert all(s.outcome == Outcome(g.prompt_tokens, 40, "length") for g, s in runs)


def test_a_request_cancelled_while_queued_never_runs(lm: LanguageModel) -> None:
    scheduled = model_like(lm, window_s=600, max_batch=2)
    batches: list[list[Generation]] = []
    scheduled.scheduler.on_batch = batches.append
    gone, gone_sink = submit(scheduled, QUESTIONS[0], GenerationParams(5))
    gone.cancel()
    kept = [submit(scheduled, q, GenerationParams(5)) for q in QUESTIONS[1:3]]
    wait_all([gone, *(g for g, _ in kept)])

    assert gone_sink.outcome == Outcome(gone.prompt_tokens, 0, "stop")
    assert [gone not in batch for batch in batches] == [True]


def test_a_lone_answer_gives_way_to_a_burst_and_keeps_its_tokens(lm: LanguageModel) -> None:
    long = GenerationParams(200, ignore_eos=True)
    alone = model_like(lm, max_batch=1)
    first_alone, first_alone_sink = submit(alone, QUESTIONS[0], long)
    wait_all([first_alone])

    engine = model_like(lm, window_s=600, max_batch=8, idle_start=True)
    batches: list[list[tuple[Generation, int]]] = []  # each row with the tokens it had when the batch began
    running = threading.Event()
    engine.scheduler.on_batch = lambda batch: (
        batches.append([(g, len(g.progress.tokens)) for g in batch]),
        running.set(),
    )
    first, first_sink = submit(engine, QUESTIONS[0], long)  # nobody else on the way: it starts at once
    assert running.wait(60)
    burst = [submit(engine, question, GenerationParams(40), engine.coming()) for question in QUESTIONS[1:3]]
    wait_all([first, *(g for g, _ in burst)])

    assert [[g for g, _ in batch] for batch in batches] == [[first], [first, *(g for g, _ in burst)]]
    assert 0 < batches[1][0][1] < 100  # it gave way early, with its tokens so far
    assert first_sink.text == first_alone_sink.text  # read on from those tokens, as if it never stopped
    assert first_sink.outcome == first_alone_sink.outcome == Outcome(first.prompt_tokens, 200, "length")
    assert all(s.outcome == Outcome(g.prompt_tokens, 40, "length") for g, s in burst)


def test_a_batch_does_not_give_way_to_fewer_newcomers_than_its_rows(lm: LanguageModel) -> None:
    engine = model_like(lm, window_s=600, max_batch=2, idle_start=True)
    batches: list[list[Generation]] = []
    running = threading.Event()
    engine.scheduler.on_batch = lambda batch: (batches.append(list(batch)), running.set())
    tickets = [engine.coming(), engine.coming()]
    pair = [
        submit(engine, q, GenerationParams(200), ticket)[0] for q, ticket in zip(QUESTIONS[:2], tickets, strict=True)
    ]
    assert running.wait(60)
    late, _ = submit(engine, QUESTIONS[2], GenerationParams(40))
    wait_all([*pair, late])

    assert batches == [pair, [late]]


def test_a_row_gives_way_only_early_and_once() -> None:
    @dataclass
    class Row:
        max_new_tokens: int = 10
        progress: Progress = field(default_factory=Progress)

    def states(*steps: int) -> list[RowState]:
        return [RowState(Row(progress=Progress(tokens=[0] * n))) for n in steps]  # type: ignore[arg-type]

    assert gives_way(states(1), lambda: 1)
    assert gives_way(states(1, 4), lambda: 2)
    assert not gives_way(states(1, 4), lambda: 1)  # fewer newcomers than its rows
    assert not gives_way(states(1, 5), lambda: 8)  # a row has half of its tokens already
    repeat = states(1)
    repeat[0].progress.gave_way = True
    assert not gives_way(repeat, lambda: 8)  # once only


@dataclass
class Waiting:
    """A queued request as `Scheduler.pick` sees it."""

    arrived: float
    batch_key: tuple[str] = ("greedy",)

    def settle(self, now: float) -> bool:
        return False


def test_a_batch_waits_for_its_feeder_while_it_runs_and_a_window_after() -> None:
    stage = Scheduler(lambda batch: None, BatchConfig(window_s=0.010, idle_start=True, hold_s=0.100))
    stage.feeder = Scheduler(lambda batch: None, BatchConfig())
    stage.coming()  # another request is on its way
    head = Waiting(arrived=100.0)

    assert stage.pick([head], 100.020) == ([head], 100.020)  # its window has passed and the feeder is idle

    stage.feeder.running = True
    batch, again = stage.pick([head], 100.020)
    assert batch == [] and again == pytest.approx(100.030)  # held; it looks again a window later
    batch, again = stage.pick([head], 100.095)
    assert batch == [] and again == pytest.approx(100.100)  # never past hold_s
    assert stage.pick([head], 100.100)[0] == [head]

    stage.feeder.running, stage.feeder.ran_at = False, 100.050
    batch, again = stage.pick([head], 100.055)
    assert batch == [] and again == pytest.approx(100.060)  # a window for the requests its batch brought
    assert stage.pick([head], 100.060)[0] == [head]


def test_a_batch_with_nobody_on_the_way_never_waits_for_its_feeder() -> None:
    stage = Scheduler(lambda batch: None, BatchConfig(window_s=0.010, idle_start=True, hold_s=0.100))
    stage.feeder = Scheduler(lambda batch: None, BatchConfig())
    stage.feeder.running = True
    head = Waiting(arrived=100.0)

    assert stage.pick([head], 100.0) == ([head], 100.0)


# --- through the app, served by uvicorn -------------------------------------------------------


@pytest.fixture(scope="module")
def batching_server(
    make_settings: Callable[..., Settings], loaded: tuple[Resources, str, str]
) -> Iterator[tuple[str, list[list[Generation]]]]:
    """The app on its own language model (the shared weights, a 50 ms window); its URL and its batches."""
    import uvicorn

    resources = loaded[0]
    lm = model_like(resources.lm, window_s=0.05, max_batch=16)
    batches: list[list[Generation]] = []
    lm.scheduler.on_batch = batches.append
    app = create_app(make_settings(), loader=lambda settings: Resources(lm, resources.retriever))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            if httpx.get(f"{url}/readyz", trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    yield url, batches
    server.should_exit = True
    thread.join(timeout=10)


async def stream_answer(client: httpx.AsyncClient, question: str, max_tokens: int) -> tuple[str, dict[str, Any]]:
    """The streamed text and the last chunk with a finish reason merged with the usage chunk."""
    body = ask(question, max_tokens=max_tokens, stream=True, stream_options={"include_usage": True})
    text, final = "", {}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                if choice["finish_reason"]:
                    final["finish_reason"] = choice["finish_reason"]
            if chunk.get("usage"):
                final["usage"] = chunk["usage"]
    return text, final


def test_concurrent_streams_each_get_their_own_length(batching_server: tuple[str, list[list[Generation]]]) -> None:
    url, _ = batching_server
    lengths = [3, 7, 12, 5, 16, 9]

    async def run() -> list[tuple[str, dict[str, Any]]]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, trust_env=False, timeout=120) as client:
            calls = [stream_answer(client, QUESTIONS[i % len(QUESTIONS)], n) for i, n in enumerate(lengths)]
            return await asyncio.gather(*calls)

    answers = asyncio.run(run())

    for (text, final), length in zip(answers, lengths, strict=True):
        assert final["finish_reason"] == "length"
        assert final["usage"]["completion_tokens"] == length
        assert text


def test_a_client_that_disconnects_mid_stream_stops_its_row(
    batching_server: tuple[str, list[list[Generation]]],
) -> None:
    url, batches = batching_server
    seen = len(batches)

    async def leave_early(client: httpx.AsyncClient) -> None:
        body = ask(QUESTIONS[0], max_tokens=250, stream=True)
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if '"content": "' in line and '"content": ""' not in line:
                    return  # leaves with the first piece of text: the connection closes

    async def run() -> list[Any]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, trust_env=False, timeout=120) as client:
            stay = [stream_answer(client, q, 30) for q in QUESTIONS[1:3]]
            return await asyncio.gather(leave_early(client), *stay)

    _, *stayed = asyncio.run(run())

    for _, final in stayed:
        assert final["finish_reason"] == "length"
        assert final["usage"]["completion_tokens"] == 30
    generations = [g for batch in batches[seen:] for g in batch]
    long = max(generations, key=lambda g: g.params.max_new_tokens)
    assert long.done.wait(60)
    assert long.outcome is not None
    assert long.aborted.is_set()
    assert long.outcome.completion_tokens < long.params.max_new_tokens
