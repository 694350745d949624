"""`sftboot serve` in a real headless Chromium: a tic-tac-toe game played by clicking, Mastermind watched and played,
Nim (a user's environment) played through the generic view, the evaluation games browsed, and every bad request
answered in the page with a 4xx or 5xx message, never a traceback."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import polars as pl
import pytest
import yaml
from conftest import ROOT, free_port, wait_until_serving

from sftboot.core.config import profile_defaults
from sftboot.engine.environment import GameSpec
from sftboot.envs import builtin
from sftboot.envs.tictactoe.game import TicTacToeEnv
from sftboot.evaluation.run import evaluate, load_student_policy

pytestmark = pytest.mark.slow  # a server and a browser
CHROMEDRIVER = shutil.which("chromedriver")
needs_browser = pytest.mark.skipif(
    not (CHROMEDRIVER and shutil.which("chromium")), reason="Chromium and chromedriver are not installed (.ci/run installs them)"
)


def _request(url: str, body: dict | bytes | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def eval_dir(tiny_sft_dir, tiny_model_dir, tmp_path_factory):
    """Evaluation games as the pipeline keeps them: the SFT'd and the untrained tiny student, exactly."""
    folder = tmp_path_factory.mktemp("eval")
    for name, model in (("sft", tiny_sft_dir), ("base", tiny_model_dir)):
        evaluate(builtin("tictactoe"), load_student_policy(str(model), 24), ["optimal"], games=8, seed=0, batch_size=64).save(folder / name)
    return folder


def _serve(models: list[str], cwd, eval_dir, *flags: str):
    """`sftboot serve` in `cwd` (its params.yaml, if any, picks the environment); the server stops when the generator closes."""
    port = free_port()
    command = [sys.executable, "-m", "sftboot.app.cli", "serve", *models, "--port", str(port), "--eval-dir", str(eval_dir), "--timeout", "30", *flags]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, "SFTBOOT_TEST_KEY": "x"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/api/models", process, 60)
    yield {"url": url, "models": models, "process": process}
    process.terminate()
    output = process.communicate(timeout=30)[0]
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def server(tiny_sft_dir, eval_dir, tmp_path_factory):
    broken = tmp_path_factory.mktemp("broken")
    (broken / "config.json").write_text("{not json")
    models = [str(tiny_sft_dir), "scripted", str(broken), "openai:nothing-here"]
    flags = ["--base-url", f"http://127.0.0.1:{free_port()}/v1", "--api-key-env", "SFTBOOT_TEST_KEY", "--max-retries", "1"]
    yield from _serve(models, tmp_path_factory.mktemp("cwd"), eval_dir, *flags)


def _final_board(moves: list[int], opponent_started: bool) -> str:
    board = [" "] * 9
    for turn, cell in enumerate(moves):
        board[cell] = "O" if (turn % 2 == 0) == opponent_started else "X"
    return "".join(board)


def _board(picture: str) -> str:
    """The tic-tac-toe board the environment's picture shows."""
    marks = dict(re.findall(r'data-cell="(\d)" data-mark="([XO]?)"', picture))
    return "".join(marks[str(cell)] or " " for cell in range(9))


def test_bad_requests_get_a_message_and_a_status_never_a_crash(server):
    url, (_, scripted, broken, unreachable) = server["url"], server["models"]
    assert _request(f"{url}/api/models")[1]["evaluated"] == ["sft", "base"]  # the most trained first: browsing opens on it
    status, body = _request(f"{url}/api/games", {"model": "no-such-model"})
    assert status == 404 and "no model 'no-such-model' here" in body["error"]
    status, body = _request(f"{url}/api/games", b"{not json")
    assert status == 422 and body["error"].startswith("malformed request")
    status, body = _request(f"{url}/api/games", {"model": broken})
    assert status == 422 and body["error"].startswith(f"cannot load {broken}")
    status, body = _request(f"{url}/api/games", {"model": unreachable})  # after the openai client's retries
    assert status == 502 and body["error"].startswith("openai:nothing-here failed: teacher request to http://127.0.0.1:")
    status, body = _request(f"{url}/api/games/nope/moves", {"move": "3"})
    assert status == 404
    status, body = _request(f"{url}/api/games", {"model": scripted, "mode": "watch", "suite": "nope"})
    assert status == 422 and body["error"] == "no suite 'nope'; tictactoe has: random, optimal"
    status, body = _request(f"{url}/api/games", {"model": scripted, "mode": "versus", "person_first": True})
    assert status == 200 and body["your_turn"] and _board(body["picture"]) == " " * 9 and body["picture"].count("data-move=") == 9
    status, again = _request(f"{url}/api/games/{body['id']}/moves", {"move": "9"})
    assert status == 409 and again["error"] == "'9' is not a cell; pick a free one, 0-8"
    status, again = _request(f"{url}/api/games/{body['id']}/moves", {"move": "4"})
    status, again = _request(f"{url}/api/games/{body['id']}/moves", {"move": "4"})
    assert status == 409 and again["error"] == "cell 4 is taken; pick a free one"
    status, body = _request(f"{url}/api/lines?model=../etc&suite=optimal")
    assert status == 404
    assert server["process"].poll() is None  # still serving


def test_many_games_at_once_do_not_mix(server):
    url, scripted = server["url"], server["models"][1]
    games = [_request(f"{url}/api/games", {"model": scripted, "mode": "versus", "person_first": True})[1] for _ in range(3)]
    for cell, game in zip((0, 4, 8), games):
        _request(f"{url}/api/games/{game['id']}/moves", {"move": str(cell)})
    for cell, game in zip((0, 4, 8), games):
        board = _board(_request(f"{url}/api/games/{game['id']}")[1]["picture"])
        assert board.count("O") == 1 and board[cell] == "O" and board.count("X") == 1


def test_the_server_listens_on_loopback_only(server):
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout if shutil.which("ss") else ""
    port = server["url"].rsplit(":", 1)[1]
    for line in listening.splitlines():
        if f":{port} " in line:
            assert "127.0.0.1:" in line


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _wait(condition, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


@needs_browser
@pytest.mark.parametrize("model_index", [1, 0])  # the scripted teacher, then the tiny student (whose illegal answers show)
def test_a_whole_game_played_by_clicking_matches_the_environment(server, browser, tmp_path, model_index):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    model = server["models"][model_index]
    browser.get(server["url"])
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"))
    Select(browser.find_element(By.ID, "model")).select_by_value(model)
    assert Select(browser.find_element(By.ID, "mode")).first_selected_option.text == "play O against the model"
    browser.find_element(By.ID, "new-game").click()
    status = browser.find_element(By.ID, "status")
    clicks = []
    while True:
        _wait(lambda: "thinking" not in status.text, timeout=120)  # the model has answered
        if status.get_attribute("data-outcome"):
            break
        free = browser.find_elements(By.CSS_SELECTOR, "#picture [data-move]")
        clicks.append(int(free[0].get_attribute("data-move")))
        free[0].click()
    outcome = browser.find_element(By.ID, "status").get_attribute("data-outcome")
    board = _board(browser.find_element(By.ID, "picture").get_attribute("innerHTML"))
    answers = [item.text.split("\n(not a legal move")[0] for item in browser.find_elements(By.CSS_SELECTOR, "#conversation li.assistant")]
    browser.save_screenshot(str(tmp_path / f"play-{model_index}.png"))

    moves = iter(clicks)  # the same game, replayed in the environment itself
    env = TicTacToeEnv(GameSpec(0, 0, 0.0), max_turns=8, opponent=lambda board, seed, p: next(moves), opponent_started=False)
    for answer in answers:
        env.step(answer)
    assert env.done and env.outcome == outcome and env.board == board
    illegal = browser.find_elements(By.CSS_SELECTOR, "#conversation li.illegal")
    assert len(illegal) == env.invalid_moves


@needs_browser
def test_browse_shows_the_most_probable_losing_line_first_beside_another_model(server, browser, eval_dir, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    lost = pl.read_parquet(eval_dir / "sft" / "games.parquet").filter(pl.col("outcome") == "loss").sort("probability", descending=True)
    assert lost.height, "the tiny student loses some lines"
    browser.get(server["url"])
    browser.find_element(By.ID, "tab-browse").click()
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#lines-model option"))
    assert Select(browser.find_element(By.ID, "lines-model")).first_selected_option.text == "sft"  # not the untrained base
    Select(browser.find_element(By.ID, "lines-suite")).select_by_value("optimal")
    Select(browser.find_element(By.ID, "lines-other")).select_by_value("base")
    browser.find_element(By.ID, "show-lines").click()
    first = _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#lines .line"))[0]
    assert "loss" in first.get_attribute("class").split()
    columns = first.find_elements(By.CSS_SELECTOR, ".column")
    assert len(columns) == 2 and columns[1].text.startswith("base:")
    assert f"loss, probability {lost['probability'][0]:#.3g}" in columns[0].text  # as JavaScript's toPrecision(3) writes it
    likeliest = lost.filter(pl.col("probability") == lost["probability"][0])  # lines as likely as each other come in either order
    assert _board(columns[0].find_element(By.CSS_SELECTOR, ".picture").get_attribute("innerHTML")) in {
        _final_board(row["moves"], row["opponent_started"]) for row in likeliest.iter_rows(named=True)
    }  # the line's board, drawn by the environment
    browser.save_screenshot(str(tmp_path / "browse.png"))


def _project(folder, env: dict):
    """A project folder whose params.yaml is the default profile's with `env` over its environment settings."""
    defaults = profile_defaults()
    (folder / "params.yaml").write_text(yaml.safe_dump(defaults | {"env": defaults["env"] | env}, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def mastermind_server(tmp_path_factory):
    project = _project(tmp_path_factory.mktemp("mastermind"), {"name": "mastermind"})
    yield from _serve(["scripted"], project, project / "eval")


@needs_browser
def test_mastermind_is_watched_and_played_with_its_pegs_drawn(mastermind_server, browser, tmp_path):
    """`env.name: mastermind` in params: no side for a person, so the model plays a suite while the page shows its pegs, then the person plays."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(mastermind_server["url"])
    _wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#model option"))
    assert [option.text for option in Select(browser.find_element(By.ID, "mode")).options] == ["watch the model play", "play it yourself"]
    Select(browser.find_element(By.ID, "suite")).select_by_value("repeated")
    browser.find_element(By.ID, "new-game").click()
    status = browser.find_element(By.ID, "status")
    _wait(lambda: status.get_attribute("data-outcome"), timeout=120)
    answers = [item.text.split("\n(not a legal move")[0] for item in browser.find_elements(By.CSS_SELECTOR, "#conversation li.assistant")]
    pegs = browser.find_element(By.CSS_SELECTOR, "#picture svg")
    assert answers and int(pegs.get_attribute("data-guesses")) == len(answers)  # the scripted teacher guesses legally
    browser.save_screenshot(str(tmp_path / "mastermind-watch.png"))

    Select(browser.find_element(By.ID, "mode")).select_by_value("self")
    browser.find_element(By.ID, "new-game").click()
    _wait(lambda: browser.find_element(By.ID, "move-text").is_displayed())
    answered = lambda count: lambda: len(browser.find_elements(By.CSS_SELECTOR, "#conversation li.assistant")) == count  # noqa: E731
    for count, guess in enumerate(("123", "7", "3 2 1"), start=1):  # 7 is no code: the environment says so; the suite's secrets repeat a colour, so none wins
        _wait(lambda: browser.find_element(By.ID, "move-text").is_displayed())
        browser.find_element(By.ID, "move-text").send_keys(guess)
        browser.find_element(By.ID, "send-move").click()
        _wait(answered(count))
    assert int(browser.find_element(By.CSS_SELECTOR, "#picture svg").get_attribute("data-guesses")) == 2
    assert len(browser.find_elements(By.CSS_SELECTOR, "#conversation li.illegal")) == 1


@pytest.fixture(scope="module")
def nim_server(tmp_path_factory):
    """A project whose params pick Nim, the one-file environment of docs/examples."""
    nim = {"class": "docs/examples/nim.py:Nim", "max_turns": 8, "stones": 15}
    project = _project(tmp_path_factory.mktemp("nim"), {"name": "nim", "source": "docs/examples/nim.py", "nim": nim})
    (project / "docs" / "examples").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "examples" / "nim.py", project / "docs" / "examples" / "nim.py")
    yield from _serve(["scripted"], project, project / "eval")


def test_nim_plays_through_the_generic_view(nim_server):
    """No picture and no side for a person: the model's game and the person's own are the conversation alone."""
    url = nim_server["url"]
    models = _request(f"{url}/api/models")[1]
    assert models["environment"] == "nim" and models["person_side"] == ""
    status, body = _request(f"{url}/api/games", {"model": "scripted", "mode": "versus"})
    assert status == 422 and "nim has no side for a person to play" in body["error"]
    status, watched = _request(f"{url}/api/games", {"model": "scripted", "mode": "watch"})
    assert status == 200 and watched["done"] and watched["picture"] is None and watched["messages"][0]["role"] == "system"
    status, played = _request(f"{url}/api/games", {"model": "scripted", "mode": "self"})
    assert played["your_turn"] and len(played["messages"]) == 2
    status, played = _request(f"{url}/api/games/{played['id']}/moves", {"move": "3"})
    assert status == 200 and played["answers"][0]["legal"] and played["messages"][-2]["content"].endswith("<move>3</move>")
