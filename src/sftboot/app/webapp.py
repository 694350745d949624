"""`sftboot serve`: play a model in the browser and browse the games the evaluations kept, for any environment.

A small FastAPI app (what `transformers serve` already installs) with one static page. A game is an episode of the
project's environment, rebuilt from its moves on every request: the model's answers are replayed as they were given,
a person's moves as theirs, and the model is asked only for the answer the game is waiting for. So the rules are the
pipeline's, a server restart or many tabs cannot mix games up, and no game state lives in a model. A person can
watch the model play a suite, play the task themselves, or, where the environment has a side for them
(`Environment.person_side`), play that side against the model; the page shows the conversation, and the
environment's picture of the state where it draws one.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
from fastapi import FastAPI, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from sftboot.core.answer import extract_move, format_answer, is_well_formed
from sftboot.core.errors import UserError
from sftboot.engine.environment import Environment, Episode, GameSpec

PAGE = Path(__file__).with_name("web") / "index.html"
MAX_GAMES = 1000  # games kept in memory; the oldest go first
MOST_TRAINED_FIRST = ("rl", "sft", "rl_without_sft", "base")  # browsing opens on the pipeline's last model, not its untrained one
PERSON_THINKS = "a person's move"
Mode = Literal["versus", "watch", "self"]  # the person plays the environment's side against the model, watches it, or plays the task


class _AwaitPerson(Exception):
    """The environment asked for the person's move and the person has not played it yet."""


class _Unloadable(Exception):
    """A model that could not be loaded: the request named a bad model, not a failing one."""


@dataclass
class Game:
    model: str
    mode: Mode
    suite: str
    seed: int
    person_first: bool = False
    person_moves: list[str] = field(default_factory=list)  # versus: the environment's side's moves, as the person gave them
    answers: list[str] = field(default_factory=list)  # the player's answers: the model's, or in `self` the person's
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one move at a time, however many clicks

    def replay(self, environment: Environment) -> tuple[Episode | None, bool, list[bool]]:
        """The game so far in the environment, whether it waits for the person, and which answers it took as legal."""
        moves = iter(self.person_moves)

        def person() -> str:
            move = next(moves, None)
            if move is None:
                raise _AwaitPerson
            return move

        legal: list[bool] = []
        try:
            if self.mode == "versus":
                episode = environment.episode_against(person, self.person_first)
            else:
                episode = environment.episode(GameSpec(0, self.seed, environment.suites[self.suite], suite=self.suite))
        except _AwaitPerson:
            return None, True, legal
        for answer in self.answers:
            invalid_before = episode.invalid_moves
            try:
                episode.step(answer)
            except _AwaitPerson:  # the player has moved; the reply is the person's to make
                legal.append(True)
                return episode, True, legal
            legal.append(episode.invalid_moves == invalid_before)
        return episode, self.mode == "self" and not episode.done, legal


class NewGame(BaseModel):
    model: str = Field(min_length=1)
    mode: Mode = "watch"
    suite: str | None = None  # watch and self: one of the environment's suites; None: its first
    person_first: bool = False  # versus: the person's side opens


class Move(BaseModel):
    move: str = Field(min_length=1, max_length=200)


class Models:
    """The models a page may pick, each loaded on first use and answering one request at a time."""

    def __init__(self, specs: list[str], timeout_s: float, make_policy) -> None:
        self.timeout_s = timeout_s
        self._make_policy = make_policy
        self._loaded: dict[str, object] = {}
        self._locks = {spec: threading.Lock() for spec in specs}
        self._pool = ThreadPoolExecutor(max_workers=4)

    def answer(self, spec: str, conversation: list[dict]) -> str:
        """`spec` is one of this server's (a new game checks it)."""
        with self._locks[spec]:
            future = self._pool.submit(self._answer, spec, conversation)
            try:
                return future.result(timeout=self.timeout_s)
            except FutureTimeout:
                raise HTTPException(504, f"{spec} did not answer within {self.timeout_s:.0f} s") from None
            except _Unloadable as error:
                raise HTTPException(422, f"cannot load {spec}: {_first_line(error.__cause__ or error)}") from None
            except Exception as error:  # an unreachable endpoint, a timeout past the retries: said, never a traceback
                raise HTTPException(502, f"{spec} failed: {_first_line(error)}") from None

    def _answer(self, spec: str, conversation: list[dict]) -> str:
        if spec not in self._loaded:
            try:
                self._loaded[spec] = self._make_policy(spec)
            except Exception as error:
                raise _Unloadable from error
        policy = self._loaded[spec]
        text = policy.respond([conversation], [0])[0].text
        if hasattr(policy, "finish"):  # a local student keeps per-conversation state until told the turn is over
            policy.finish(conversation)
        return text


def _first_line(error: BaseException) -> str:
    said = (str(error).splitlines() or [""])[0][:200]
    return said if isinstance(error, UserError) else f"{type(error).__name__}: {said}"


def _state(game_id: str, game: Game, environment: Environment) -> dict:
    episode, waiting, legal = game.replay(environment)
    done = bool(episode and episode.done)
    answers = [{"answer": answer, "well_formed": is_well_formed(answer), "move": extract_move(answer), "legal": ok} for answer, ok in zip(game.answers, legal)]
    return {
        "id": game_id,
        "model": game.model,
        "mode": game.mode,
        "messages": episode.messages if episode else [],
        "picture": environment.picture(
            episode.moves if episode else [], bool(episode and episode.opponent_started), episode.messages if episode else [], waiting and not done
        ),
        "answers": answers,
        "your_turn": waiting and not done,
        "done": done,
        "outcome": episode.outcome if done else None,
    }


def create_app(model_specs: list[str], eval_dir: Path, environment: Environment, timeout_s: float, make_policy) -> FastAPI:
    """The app: `make_policy(spec)` turns a model spec (folder, openai:NAME, scripted) into a policy."""
    app = FastAPI(title="sftboot", docs_url=None, redoc_url=None)
    models = Models(model_specs, timeout_s, make_policy)
    games: dict[str, Game] = {}
    lock = threading.Lock()

    @app.exception_handler(HTTPException)
    def _said(request, error: HTTPException):
        return JSONResponse({"error": error.detail}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    def _malformed(request, error: RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        return JSONResponse({"error": f"malformed request: {where}: {first['msg']}"}, status_code=422)

    def _game(game_id: str) -> Game:
        with lock:
            if game_id not in games:
                raise HTTPException(404, "no such game; start a new one")
            return games[game_id]

    def _advance(game_id: str, game: Game) -> dict:
        """Ask the model until the game waits for the person or ends (an illegal answer is retried, as in evaluation)."""
        while True:
            episode, waiting, _ = game.replay(environment)
            if waiting or episode.done:
                return _state(game_id, game, environment)
            game.answers.append(models.answer(game.model, list(episode.messages)))

    @app.get("/")
    def page():
        return FileResponse(PAGE)

    @app.get("/api/models")
    def list_models():
        names = [path.name for path in eval_dir.glob("*") if (path / "games.parquet").exists()]
        rank = {name: place for place, name in enumerate(MOST_TRAINED_FIRST)}
        evaluated = sorted(names, key=lambda name: (rank.get(name, len(rank)), name))
        suites = [{"name": suite, "title": environment.title(suite)} for suite in environment.suites]
        return {"models": model_specs, "evaluated": evaluated, "environment": environment.name, "suites": suites, "person_side": environment.person_side}

    @app.post("/api/games")
    def new_game(request: NewGame):
        if request.model not in model_specs:
            raise HTTPException(404, f"no model {request.model!r} here; this server has: {', '.join(model_specs)}")
        if request.mode == "versus" and not environment.person_side:
            raise HTTPException(422, f"{environment.name} has no side for a person to play; watch the model, or play it yourself")
        suite = request.suite or next(iter(environment.suites))
        if suite not in environment.suites:
            raise HTTPException(422, f"no suite {suite!r}; {environment.name} has: {', '.join(environment.suites)}")
        game_id = uuid.uuid4().hex
        game = Game(request.model, request.mode, suite, seed=uuid.UUID(game_id).int % 2**31, person_first=request.person_first)
        with lock:
            games[game_id] = game
            while len(games) > MAX_GAMES:
                games.pop(next(iter(games)))
        with game.lock:
            return _advance(game_id, game)

    @app.get("/api/games/{game_id}")
    def show_game(game_id: str):
        return _state(game_id, _game(game_id), environment)

    @app.post("/api/games/{game_id}/moves")
    def move(game_id: str, request: Move):
        """The person's move: the environment's side's (versus), or the player's own answer (self)."""
        game = _game(game_id)
        with game.lock:
            episode, waiting, _ = game.replay(environment)
            if not waiting or (episode and episode.done):
                raise HTTPException(409, "it is not your turn")
            made = game.person_moves if game.mode == "versus" else game.answers
            made.append(request.move.strip() if game.mode == "versus" else format_answer(PERSON_THINKS, request.move.strip()))
            try:
                return _advance(game_id, game)
            except ValueError as refused:  # the rules refuse the person's move: said, and it can be made again
                made.pop()
                raise HTTPException(409, str(refused)) from None
            except HTTPException:
                made.pop()  # the model failed to answer: the move can be made again
                raise

    @app.get("/api/lines")
    def lines(model: str, suite: str, outcome: str | None = None, limit: int = 50):
        frame = _lines(eval_dir, model).filter(pl.col("opponent") == suite)
        if outcome:
            frame = frame.filter(pl.col("outcome") == outcome)
        order = pl.when(pl.col("outcome") == "loss").then(0).when(pl.col("outcome") == "draw").then(1).otherwise(2)
        frame = frame.with_columns(order=order).sort(["order", "probability"], descending=[False, True]).head(max(1, min(limit, 500)))
        return {"model": model, "suite": suite, "lines": [_line(row, environment) for row in frame.iter_rows(named=True)]}

    @app.get("/api/compare")
    def compare(other: str, suite: str, moves: str):
        """`other`'s line that follows `moves` (comma-separated, in play order) the longest."""
        wanted = [int(move) for move in moves.split(",") if move.strip().lstrip("-").isdigit()]
        frame = _lines(eval_dir, other).filter(pl.col("opponent") == suite)
        best, best_key = None, (-1, -1.0)
        for row in frame.iter_rows(named=True):
            shared = next((i for i, (a, b) in enumerate(zip(row["moves"], wanted)) if a != b), min(len(row["moves"]), len(wanted)))
            key = (shared, row["probability"])
            if key > best_key:
                best, best_key = row, key
        if best is None:
            raise HTTPException(404, f"{other} has no {suite} lines")
        return {"model": other, "shared_moves": best_key[0], "line": _line(best, environment)}

    return app


def _lines(eval_dir: Path, model: str) -> pl.DataFrame:
    path = eval_dir / model / "games.parquet"
    if "/" in model or not path.exists():
        raise HTTPException(404, f"no evaluation games for {model!r}; run `dvc repro evaluate@{model}` or `sftboot eval --out`")
    return pl.read_parquet(path, columns=["opponent", "probability", "outcome", "moves", "opponent_started", "messages", "invalid_moves"])


def _line(row: dict, environment: Environment) -> dict:
    answers = [m["content"] for m in row["messages"] if m["role"] == "assistant"]
    return {
        "picture": environment.picture(row["moves"], row["opponent_started"], row["messages"], playable=False),
        "probability": row["probability"],
        "outcome": row["outcome"],
        "moves": row["moves"],
        "opponent_started": row["opponent_started"],
        "invalid_moves": row["invalid_moves"],
        "answers": answers,
    }
