"""The docs' quick starts work as written (#23): each doc's `## Quick start` runs in a fresh folder and succeeds.

Every bash and Python block of the section runs, in order, in one bash script with `set -euo pipefail`, so any
failing command fails the test. The only change is mechanical: the ports the section names (`--port N`) become
free ports, so the test can run beside other servers, and the fresh folder links the checkout's `examples/`
(for a quick start run from a checkout's root). Servers a quick start starts in the background must be
stopped by the quick start itself: when the script ends, no process it started may still be running.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HEADING = "## Quick start"
# The pages whose opening examples used placeholders or blocking servers (#23): each must have a quick start.
REQUIRED = ("features.md", "kserve.md", "monitoring.md", "predict.md", "skew.md", "training.md", "ui.md")
PLACEHOLDER = re.compile(r"\bRUN_ID\b|(?<!\$)\bRUN\b(?!=)|<[A-Za-z][\w -]*>")  # RUN_ID, RUN, <model>
BACKGROUND = re.compile(r"&\s*(\w+)=\$!")

PREAMBLE = "set -euo pipefail\nset -x\n"
# The quick start's final command (its last that is not cleanup) prints a result between these two lines (#37).
FINAL, END = "@@QUICKSTART-FINAL@@", "@@QUICKSTART-END@@"
CLEANUP = re.compile(r"^\s*(kill|wait|cd|rm|sleep)\b|^\s*(#.*)?$")
CONTINUED = re.compile(r"(\\|\|\||\||&&)\s*(#.*)?$")
EMPTY_RESULT = ("no online value", " 0 rows in [")  # what an empty feature read / materialisation prints
# A quick start that reads the checkout's examples/ must say so in its prose (#37 item 8): a pip-installed roost has
# no examples/ folder, so the reader must learn before the first command that this one runs from a checkout.
NEEDS_CHECKOUT = re.compile(r"root of a roost checkout[^`]*`examples/`", re.S)


def section(text: str) -> str:
    """The text of the doc's `## Quick start` section ('' when it has none)."""
    start = text.find(f"\n{HEADING}\n")
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(HEADING) + 2)
    return text[start : end if end >= 0 else len(text)]


def blocks(text: str) -> list[tuple[str, str]]:
    """The (language, code) of every fenced bash/python block of the text."""
    return [
        (m.group(1), m.group(2))
        for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.M | re.S)
        if m.group(1) in ("bash", "python")
    ]


def quickstarts() -> list[str]:
    """The names of the docs that have a quick start."""
    return sorted(p.name for p in DOCS.glob("*.md") if section(p.read_text(encoding="utf-8")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mark_final(code: str) -> str:
    """Bash code with FINAL/END echoed around its last command that is not cleanup (kill, wait, cd, rm, sleep)."""
    lines = code.rstrip("\n").splitlines()
    last = len(lines) - 1
    while last >= 0 and CLEANUP.match(lines[last]):
        last -= 1
    first = last
    while first > 0 and CONTINUED.search(lines[first - 1]):
        first -= 1
    marked = lines[:first] + [f"echo {FINAL}"] + lines[first : last + 1] + [f"echo {END}"] + lines[last + 1 :]
    return "\n".join(marked)


def script(text: str, ports: dict[str, str]) -> str:
    """The bash script that runs the quick start's blocks in order, with its ports replaced by `ports` and its
    final command's output marked (FINAL ... END)."""
    lines = [PREAMBLE]
    found = blocks(section(text))
    for i, (lang, code) in enumerate(found):
        for old, new in ports.items():
            code = re.sub(rf"\b{old}\b", new, code)
        final = i == len(found) - 1
        if lang == "python":
            wrapped = ["python - <<'QUICKSTART_PY'", code.rstrip("\n"), "QUICKSTART_PY"]
            lines += [f"echo {FINAL}", *wrapped, f"echo {END}"] if final else wrapped
        else:
            lines.append(_mark_final(code) if final else code.rstrip("\n"))
    return "\n".join(lines) + "\n"


def final_output(stdout: str) -> str:
    """What the quick start's final command printed (between the FINAL and END lines)."""
    assert FINAL in stdout and END in stdout, "the final command's markers are missing (did the script stop?)"
    return stdout.split(FINAL + "\n", 1)[1].split(END, 1)[0]


def _session(sid: int) -> list[int]:
    """The live (not zombie) processes of session `sid`."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.parent.name))
    return pids


def test_required_docs_have_runnable_quick_starts() -> None:
    """The pages of #23 have a quick start with no placeholder, and each background server is stopped in its block."""
    assert set(REQUIRED) <= set(quickstarts())
    for name in quickstarts():
        found = blocks(section((DOCS / name).read_text(encoding="utf-8")))
        assert found, f"{name}: the quick start has no bash/python block"
        for _, code in found:
            for line in code.splitlines():
                code_part = line.split(" #", 1)[0]
                assert not PLACEHOLDER.search(code_part), f"{name}: placeholder in {line!r}"
            for var in BACKGROUND.findall(code):
                assert re.search(rf"\bkill \"?\${var}\b", code), f"{name}: ${var} started, never stopped"


def prose(text: str) -> str:
    """The quick start's text outside its code blocks."""
    return re.sub(r"^```\w*\n.*?^```", "", section(text), flags=re.M | re.S)


def needs_examples(text: str) -> bool:
    """Whether the quick start's code reads the checkout's examples/ folder."""
    return any(re.search(r"(^|[\s/.])examples/", code) for _, code in blocks(section(text)))


def test_quick_starts_that_need_examples_say_so() -> None:
    """#37 item 8: a quick start whose commands read `examples/` says, before its code, that it runs from the root of a
    roost checkout and names `examples/`; the others never touch it (the run below links it only for the former)."""
    for name in quickstarts():
        text = (DOCS / name).read_text(encoding="utf-8")
        if needs_examples(text):
            before_code = prose(text).split("```", 1)[0]
            assert NEEDS_CHECKOUT.search(before_code), f"{name}: reads examples/ but does not say it needs a checkout"
    bad = "# X\n\n## Quick start\n\nRun it.\n\n```bash\ncp -r ../examples/engagement/features .\n```\n"
    assert needs_examples(bad) and not NEEDS_CHECKOUT.search(prose(bad))


def test_script_replaces_ports_and_wraps_python() -> None:
    """The extraction: ports swapped everywhere they appear, Python blocks fed to the interpreter."""
    text = (
        "# T\n\n## Quick start\n\n```bash\nroost ui --port 5000 & UI=$!\ncurl http://127.0.0.1:5000/\nkill $UI\n```\n"
        "```python\nprint(1)\n```\n\n## Next\n\n```bash\nnot run\n```\n"
    )
    s = script(text, {"5000": "1234"})
    assert "--port 1234" in s and "127.0.0.1:1234/" in s and "5000" not in s
    assert "python - <<'QUICKSTART_PY'\nprint(1)\nQUICKSTART_PY" in s
    assert "not run" not in s
    assert s.index(FINAL) < s.index("print(1)") < s.index(END)  # the last block is the final command


def test_final_command_is_the_last_that_is_not_cleanup() -> None:
    """The final command: continuation lines belong to it; kill/wait/comments after it do not."""
    code = "roost a\nroost b --x 1 \\\n  --y 2 ||\n  test $? -eq 1\n# done\nkill $S; wait $S\n"
    marked = _mark_final(code).splitlines()
    assert marked == [
        "roost a",
        f"echo {FINAL}",
        "roost b --x 1 \\",
        "  --y 2 ||",
        "  test $? -eq 1",
        f"echo {END}",
        "# done",
        "kill $S; wait $S",
    ]
    assert final_output(f"x\n{FINAL}\nresult\n{END}\n") == "result\n"


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("doc", quickstarts())
def test_quick_start_runs_as_written(doc: str, tmp_path: Path) -> None:
    """The doc's quick start, every block in order, in a fresh folder: every command succeeds, no server is left."""
    text = (DOCS / doc).read_text(encoding="utf-8")
    code = "\n".join(c for _, c in blocks(section(text)))
    ports = {p: str(_free_port()) for p in sorted(set(re.findall(r"--(?:grpc-)?port (\d+)", code)))}
    (tmp_path / "quickstart.sh").write_text(script(text, ports), encoding="utf-8")
    if needs_examples(text):  # only the quick starts that say they run "from the root of a roost checkout"
        (tmp_path / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROOST_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '')}"
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as fo, err.open("w") as fe:  # files, not pipes: a leaked server must not block the read
        proc = subprocess.Popen(
            ["bash", "quickstart.sh"], cwd=tmp_path, env=env, stdout=fo, stderr=fe, start_new_session=True
        )
    try:
        proc.wait(timeout=1200)
        assert proc.returncode == 0, (out.read_text()[-4000:], err.read_text()[-6000:])
        result = final_output(out.read_text())
        assert result.strip(), f"{doc}: the quick start's final command printed nothing"
        for empty in EMPTY_RESULT:
            assert empty not in result, f"{doc}: the final command's result is empty ({empty!r}):\n{result}"
        deadline = time.monotonic() + 120  # a stopped server may still be draining
        while _session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _session(proc.pid), "the quick start left processes running (stop what it starts)"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
