"""Hub sharing: `adapters push` uploads exactly what its dry run shows, the token stays secret, and a
pushed adapter loads back by repo id, offline from the cache.

No Hub is reachable from the tests: a local HTTP server on 127.0.0.1 plays the few Hub routes that
``huggingface_hub`` calls (read from its source: ``create_repo``, ``upload_folder``, ``snapshot_download``),
records every call and keeps what was committed, so the download path reads back what the push sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pytest

import adapters
from adapters.cli import main
from adapters.errors import AdaptersUserError
from adapters.hub import HUB_UNREACHABLE
from adapters.share import files_to_upload, push
from tests.conftest import make_frame, tiny_recipe

TOKEN = "hf_TestOnlyNotARealToken0123456789abcdef"
WRITES = ("/api/repos/create", "/preupload/", "/commit/", "/api/validate-yaml")


class FakeHub:
    """Just enough of the Hub API for huggingface_hub 2.x to create a repo, upload to it and download it.

    Routes: ``POST /api/repos/create``, ``POST /api/validate-yaml``,
    ``POST /api/models/{org}/{name}/preupload/{rev}`` (every file "regular": no LFS or Xet transfer),
    ``POST /api/models/{org}/{name}/commit/{rev}`` (NDJSON, base64 contents),
    ``GET /api/models/{org}/{name}/revision/{rev}``, ``GET /api/models/{org}/{name}/tree/{rev}``,
    ``HEAD|GET /{org}/{name}/resolve/{rev}/{path}``. Write routes want ``Bearer TOKEN`` (else 401), or
    answer ``refuse`` when it is set.
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.repos: dict[str, dict[str, Any]] = {}
        self.refuse: int | None = None
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

            def do_HEAD(self) -> None:
                hub.handle(self, "HEAD")

            def do_GET(self) -> None:
                hub.handle(self, "GET")

            def do_POST(self) -> None:
                hub.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def paths(self, method: str | None = None) -> list[str]:
        return [call["path"] for call in self.calls if method is None or call["method"] == method]

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(request.path)
        path = unquote(url.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        headers = {key: value for key, value in request.headers.items() if key.lower() != "authorization"}
        call = {"method": method, "path": path, "query": url.query, "headers": headers, "body": body}
        self.calls.append({**call, "authorization": request.headers.get("Authorization")})
        parts = path.strip("/").split("/")
        if method == "POST" and any(route in path for route in WRITES) and not self._authorized(request):
            return
        if method == "POST" and path == "/api/repos/create":
            payload = json.loads(body)
            repo = f"{payload['organization']}/{payload['name']}"
            if repo in self.repos:
                return self._json(request, {"error": "You already created this model repo"}, 409)
            self.repos[repo] = {
                "files": {},
                "sha": "0" * 40,
                "private": payload.get("visibility") == "private",
            }
            return self._json(request, {"url": f"{self.url}/{repo}", "name": repo})
        if method == "POST" and path == "/api/validate-yaml":
            return self._json(request, {"errors": [], "warnings": []})
        repo = "/".join(parts[2:4])
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and repo not in self.repos:
            return self._json(
                request, {"error": "Repository not found"}, 404, {"X-Error-Code": "RepoNotFound"}
            )
        if method == "POST" and parts[:2] == ["api", "models"] and parts[4:5] == ["preupload"]:
            files = [
                {"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                for item in json.loads(body)["files"]
            ]
            return self._json(request, {"files": files, "commitOid": self.repos[repo]["sha"]})
        if method == "POST" and parts[:2] == ["api", "models"] and parts[4:5] == ["commit"]:
            state = self.repos[repo]
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    assert item["value"]["encoding"] == "base64"
                    state["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] != "header":  # lfsFile, deletions: not expected here
                    return self._json(request, {"error": f"unexpected {item['key']}"}, 400)
            state["sha"] = hashlib.sha1(state["sha"].encode() + body).hexdigest()
            commit = {"commitUrl": f"{self.url}/{repo}/commit/{state['sha']}", "commitOid": state["sha"]}
            return self._json(request, {**commit, "pullRequestUrl": None})
        if method == "GET" and parts[:2] == ["api", "models"] and parts[4:5] == ["revision"]:
            state = self.repos[repo]
            siblings = [{"rfilename": name} for name in sorted(state["files"])]
            info = {"id": repo, "sha": state["sha"], "private": state["private"], "siblings": siblings}
            return self._json(request, info)
        if method == "GET" and parts[:2] == ["api", "models"] and parts[4:5] == ["tree"]:
            tree = [
                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                for name, data in sorted(self.repos[repo]["files"].items())
            ]
            return self._json(request, tree)
        if len(parts) >= 5 and parts[2] == "resolve":
            state = self.repos.get("/".join(parts[:2]))
            name = "/".join(parts[4:])
            if state is None or name not in state["files"]:
                return self._json(
                    request, {"error": "Entry not found"}, 404, {"X-Error-Code": "EntryNotFound"}
                )
            data = state["files"][name]
            request.send_response(200)
            request.send_header("Content-Length", str(len(data)))
            request.send_header("ETag", f'"{hashlib.sha1(data).hexdigest()}"')
            request.send_header("X-Repo-Commit", state["sha"])
            request.end_headers()
            if method == "GET":
                request.wfile.write(data)
            return None
        return self._json(request, {"error": f"fake hub: no route {method} {path}"}, 501)

    def _authorized(self, request: BaseHTTPRequestHandler) -> bool:
        if self.refuse is None and request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._json(request, {"error": "Invalid credentials in Authorization header"}, self.refuse or 401)
        return False

    @staticmethod
    def _json(
        request: BaseHTTPRequestHandler, payload: Any, status: int = 200, headers: dict | None = None
    ) -> None:
        data = json.dumps(payload).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.end_headers()
        request.wfile.write(data)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """One tiny trained artifact, with TensorBoard logs (which must not be uploaded)."""
    output = tmp_path_factory.mktemp("share") / "tiny"
    recipe = tiny_recipe(tiny_model_dir, training={"log_with": ["tensorboard"]})
    adapters.train(recipe, data=make_frame(80), output_dir=output, progress=False)
    assert (output / "predictions.csv").is_file() and list((output / "logs").rglob("events.out.*"))
    return output


@pytest.fixture
def copy(artifact: Path, tmp_path: Path) -> Path:
    """A private copy of the artifact, for tests that add files or write beside it."""
    return Path(shutil.copytree(artifact, tmp_path / "work" / "tiny"))


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """The fake Hub as ``huggingface_hub``'s endpoint, online, with its own cache; no token set yet."""
    from huggingface_hub import constants

    server = FakeHub()
    # Both are read from HF_ENDPOINT at import; file downloads use the template.
    monkeypatch.setattr(constants, "ENDPOINT", server.url)
    resolve = server.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", resolve)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.close()


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def tree(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_what_is_uploaded(copy: Path) -> None:
    (copy / ".env").write_text("HF_TOKEN=secret\n")
    (copy / ".git").mkdir()
    (copy / ".git" / "config").write_text("[core]\n")
    (copy / "extra").mkdir()
    (copy / "extra" / "notes.txt").write_text("kept: not a known private file\n")
    files, left_out = files_to_upload(copy)
    names = {path.as_posix() for path in files}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "recipe.yaml"} <= names
    assert {"config.json", "metrics.json", "tokenizer.json", "extra/notes.txt"} <= names
    assert not any(name == "predictions.csv" or name.startswith(("logs/", ".")) for name in names)
    assert set(left_out) == {".env", ".git/", "logs/", "predictions.csv"}
    with_predictions, _ = files_to_upload(copy, include_predictions=True)
    assert {path.as_posix() for path in with_predictions} == names | {"predictions.csv"}


def test_dry_run_writes_and_lists_exactly_the_upload(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", str(copy), "org/name", "--dry-run"]) == 0  # offline, no token: needs neither
    out = capsys.readouterr().out
    preview = copy.parent / "tiny.push-preview"
    written = tree(preview)
    assert "predictions.csv" not in written and not any(name.startswith("logs/") for name in written)
    assert written == {name: (copy / name).read_bytes() for name in written}
    listed = {line.split()[-1] for line in out.splitlines() if line.strip() and line.split()[0][0].isdigit()}
    assert listed - {"files"} == set(written)
    assert "left out: predictions.csv" in out and "left out: logs/" in out and str(preview) in out

    assert main(["push", str(copy), "org/name", "--dry-run"]) == 2  # not over a non-empty folder
    assert "not empty" in one_line_error(capsys)

    elsewhere = copy.parent / "with-predictions"
    argv = ["push", str(copy), "org/name", "--dry-run-dir", str(elsewhere), "--include-predictions"]
    assert main(argv) == 0
    assert set(tree(elsewhere)) == set(written) | {"predictions.csv"}
    assert "left out: predictions.csv" not in capsys.readouterr().out

    assert main(["push", str(copy), "org/name", "--dry-run-dir", str(copy / "inside")]) == 2
    assert "outside the adapter directory" in one_line_error(capsys) and not (copy / "inside").exists()


def test_push_uploads_the_dry_run_and_keeps_the_token_secret(
    copy: Path,
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    preview = push(copy, "org/name", dry_run=True).preview_dir
    assert hub.calls == []
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    staging = tmp_path / "tmp"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    caplog.set_level(logging.DEBUG)

    assert main(["push", str(copy), "org/name", "--private"]) == 0
    out, err = capsys.readouterr()

    created = [json.loads(call["body"]) for call in hub.calls if call["path"] == "/api/repos/create"]
    assert created == [{"name": "name", "organization": "org", "visibility": "private", "type": "model"}]
    assert hub.repos["org/name"]["private"]
    uploaded = hub.repos["org/name"]["files"]
    assert uploaded == tree(preview)  # the same files, byte for byte
    assert uploaded["adapter_model.safetensors"] == (copy / "adapter_model.safetensors").read_bytes()
    assert "predictions.csv" not in uploaded and not any(name.startswith("logs/") for name in uploaded)
    writes = [call for call in hub.calls if call["method"] == "POST"]
    assert {call["authorization"] for call in writes} == {f"Bearer {TOKEN}"}
    assert any("/api/models/org/name/commit/main" == call["path"] for call in writes)
    assert f"{hub.url}/org/name/commit/{hub.repos['org/name']['sha']}" in out

    assert TOKEN not in out + err + caplog.text
    assert list(staging.iterdir()) == []  # the staged copy is gone
    for folder in (tmp_path, copy, Path(tempfile.gettempdir())):
        for path in folder.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert TOKEN.encode() not in path.read_bytes(), path


def test_push_errors_are_one_line(
    copy: Path,
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["push", str(copy), "org/name"]) == 2
    error = one_line_error(capsys)
    assert "hf auth login" in error and "HF_TOKEN" in error and hub.calls == []

    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    assert main(["push", str(copy), "org/name"]) == 2
    assert "HTTP 401" in one_line_error(capsys) and "hf_wrong" not in capsys.readouterr().err

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.refuse = 403
    assert main(["push", str(copy), "org/name"]) == 2
    assert "HTTP 403" in one_line_error(capsys) and "org/name" not in hub.repos

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(AdaptersUserError, match=HUB_UNREACHABLE):
        push(copy, "org/name", endpoint=f"http://127.0.0.1:{port}", token=TOKEN)
    offline(monkeypatch)
    hub.refuse = None
    assert main(["push", str(copy), "org/name"]) == 2
    assert HUB_UNREACHABLE in one_line_error(capsys) and "org/name" not in hub.repos

    (copy / "recipe.yaml").unlink()
    assert main(["push", str(copy), "org/name", "--dry-run"]) == 2
    assert "recipe.yaml" in one_line_error(capsys)
    assert main(["push", str(tmp_path), "a/b/c", "--dry-run"]) == 2
    assert "repo id" in one_line_error(capsys)


def test_load_and_predict_by_repo_id_offline(
    artifact: Path,
    hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push(artifact, "org/name", token=TOKEN)
    from adapters.hub import artifact_dir

    downloaded = artifact_dir("org/name")  # the real download path, from the fake Hub into the cache
    assert downloaded.is_relative_to(tmp_path / "hub-cache")
    assert any("/org/name/resolve/" in path for path in hub.paths("GET"))
    hub.close()  # from here on there is no Hub at all
    offline(monkeypatch)

    frame = make_frame(12, seed=3)
    from_hub = adapters.load("org/name")
    assert from_hub.directory == downloaded
    np.testing.assert_allclose(
        from_hub.predict_proba(frame), adapters.load(artifact).predict_proba(frame), atol=1e-6
    )

    rows, output = tmp_path / "rows.csv", tmp_path / "out" / "scores.csv"
    frame.to_csv(rows, index=False)
    assert main(["predict", "org/name", "--input", str(rows), "--output", str(output)]) == 0
    scores = pd.read_csv(output)
    expected = adapters.predict(artifact, frame)
    np.testing.assert_allclose(
        scores[["prob_good", "prob_bad"]], expected[["prob_good", "prob_bad"]], atol=1e-6
    )
    capsys.readouterr()

    assert main(["predict", "org/not-cached", "--input", str(rows), "--output", str(tmp_path / "x.csv")]) == 2
    error = one_line_error(capsys)
    assert HUB_UNREACHABLE in error and "org/not-cached" in error
