"""Every fenced code block in README.md and docs/*.md runs here: one test per block, id "file:line".

The rules, written down once:

Code or not
    The fence's info string decides. ``python``, ``bash`` / ``sh`` / ``console``, ``yaml`` and
    ``toml`` blocks are code and run as below; ``text``, ``csv`` and any other name mark output,
    folder trees or data, which are not code. A fence without an info string fails: say ```text
    for output, ```bash for commands.

Where
    Each block runs in a fresh workspace: an empty temporary folder holding links to the
    repository's top-level entries (not ``tests/``, ``.git``, ``runs/``, ``.venv``), so that
    ``examples/tiny.yaml`` resolves as in a checkout while ``runs/``, caches and outputs land in
    the workspace. Environment: OMP/MKL threads 1, ``AUGKIT_REPO`` = the repository, and first
    on PATH the ``bin`` of ``.venv``, which stands for the virtual environment running these
    tests (below).

Speed: a fork server
    Importing torch, timm and MONAI costs a new interpreter about 3 s, more than most blocks
    themselves. So ``augkit``, ``python`` and ``python3`` (on PATH, in ``.venv/bin``, and for
    python blocks) are small shims that hand the command, its working folder, environment
    and stdin / stdout / stderr to a fork server: an interpreter of this venv that imported
    those once and forks a fresh child per command. The child runs what the real executable
    would run (``augkit.cli:main``, the script, ``-m`` module or ``-c`` code; any other python
    invocation runs the real interpreter) and answers with its exit status. The child draws a
    new patient-hash salt, as a new interpreter does. ``.venv/bin/activate`` puts the shims
    first on PATH. ``test_shims_run_what_the_console_script_runs`` ties the shim to the
    installed entry point.

Placeholders, replaced in every block before it runs
    ``runs/<name>-<YYYYmmdd-HHMMSS>``  a finished run folder: one tiny run (examples/tiny.yaml with
                                       RUN_OVERRIDES) made once per test session; ``runs/quickstart-...``
                                       a tiny run with the quickstart's generator (diffusion) instead;
    ``/data/chest_xray``, ...          tiny generated trees in each documented layout (DATA_TREES).

python
    Written to a file and run with the venv's python, in the workspace. Blocks must be quick
    (examples/tiny.yaml-sized settings, phantom data).
    A block whose first line is ``# <path>.py`` is a file rather than a script:
    * if the repository has <path>, the block is an excerpt: it must appear verbatim in that file
      (the file runs in its own tests);
    * otherwise it is a file of the reader's own package: every such block of the page is written
      to its path in the workspace; ``tests/test_*.py`` then runs under pytest, any other file is
      imported as a module.

bash, sh, console
    The block's command lines (in console blocks, the lines starting with ``$ ``; ``\\``
    continues a line) run in one bash with ``set -euo pipefail``. Every command runs as written
    except those CHEAPER rewrites: each of them still runs, in a cheaper real form.

yaml
    A block with a top-level ``dataset`` key is a recipe: ``augkit validate`` (run in-process
    through typer's CliRunner) must accept it. A block whose top-level keys are all recipe keys
    is a fragment: it is merged into examples/tiny.yaml (a plugin section that names another
    plugin replaces tiny's section; other mappings merge key by key) and validated the same way.
    Any other yaml block must parse.

toml
    Parsed. A block whose first line is ``# <path>`` naming a repository file is an excerpt: every
    value it shows must equal that file's.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10: pip vendors the same parser
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_LINKED = {"tests", ".git", "runs", ".venv", ".pytest_cache", "build"}
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 120

# The session's finished run, standing for every ``runs/<name>-<stamp>`` in the docs.
RUN_OVERRIDES = ["evaluation.seeds=1", "evaluation.regimes=[real,fake+real]", "evaluation.ratios=[]",
                 "selection.judge_steps=100"]
RUN_FOLDER = re.compile(r"runs/([A-Za-z0-9_.-]+?)-\d{8}-\d{6}")
# runs/quickstart-...: the quickstart's generator (diffusion), at tiny.yaml's size and cost
QUICKSTART_GENERATOR = {"name": "diffusion", "options": {"widths": [16, 16], "attention": [False, True],
                                                         "head_channels": 16, "norm_groups": 8, "iterations": 20,
                                                         "batch_size": 16, "sampling_steps": 4,
                                                         "sampler": "euler"}}  # one pass a step: the docs' commands,
                                                                               # not the sampler, are tested here

# What the commands in the docs would cost whole, and what runs instead (see ``cheaper``):
CHEAPER = """
python3 -m venv DIR              nothing: the workspace's .venv stands for the venv running the tests
pip install [-e] PATH[EXTRAS]    PATH must hold a pyproject.toml declaring EXTRAS, and its
                                 distribution must be installed in this venv; nothing is installed
augkit run RECIPE ARGS           augkit validate RECIPE ARGS (without --out): a run takes minutes
augkit evaluate RUN ARGS         augkit evaluate RUN ARGS --seeds 1 (RUN: the session's tiny run, or
                                 its diffusion run for runs/quickstart-...)
python -m pytest ARGS            python -m pytest --collect-only ARGS, in the repository
python examples/library.py,      byte-compiled; tests/e2e/test_examples.py runs them (monai_pipeline
  python examples/monai_pipeline.py  at its --smoke size; checked: it names them)
python SCRIPT ARGS (other)       python SCRIPT --help; every --option in ARGS must be in that help
bash benchmarks/gpu.sh ARGS      without a CUDA GPU: bash -n (syntax) and every python script it
                                 runs answers --help; with one: runs whole
torchrun OPTS -m augkit ARGS     torchrun --help, every --option in OPTS must be in that help; then
                                 augkit ARGS, in one process, by the rules above (torchrun itself runs
                                 in tests/test_distributed.py and tests/e2e/test_torchrun.py)
"""
RUN_WHOLE_IN_E2E = {"examples/library.py", "examples/monai_pipeline.py"}


# -- the fork server -----------------------------------------------------------------------

PRELOAD = ("torch", "timm", "monai", "monai.data", "monai.transforms", "pydicom", "nibabel", "PIL.Image", "pytest",
           "augkit", "augkit.cli", "augkit.runner", "augkit.pipeline", "augkit.testing", "augkit.outputs.report")

SHIM = """#!{python} -IS
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect({socket!r})
request = json.dumps({{"argv": [{name!r}, *sys.argv[1:]], "cwd": os.getcwd(), "env": dict(os.environ)}}).encode()
socket.send_fds(s, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
answer = s.recv(16)
sys.exit(int(answer) if answer else 70)
"""


def serve(path: str) -> None:
    """The fork server's main loop: preload, listen on ``path``, fork one child per request."""
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    __import__("augkit").get_plugin_manager()  # imports every plugin module
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # the socket appears only when the server is ready
    listener.listen(8)
    listener.settimeout(5)
    parent = os.getppid()
    while os.getppid() == parent:  # never outlive the test session, even a killed one
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        if os.fork() == 0:
            listener.close()
            _child(conn)
        conn.close()


def _child(conn: socket.socket) -> None:
    """Receive one request and run it in this process, as the real executable would; never returns."""
    import atexit
    import runpy
    import secrets
    import traceback

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    size = int.from_bytes(data[:8], "big")
    while len(data) < 8 + size:
        data += conn.recv(1 << 20)
    request = json.loads(data[8:])
    for fd, target in zip(fds, (0, 1, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    __import__("augkit.stages.data").stages.data._SALT = secrets.token_bytes(16)  # a new interpreter's fresh secret
    name, args = request["argv"][0], request["argv"][1:]
    code = 0
    try:
        if name == "augkit":
            sys.argv = ["augkit", *args]
            __import__("augkit.cli").cli.main()
        elif args[:1] == ["-m"] and len(args) > 1:
            sys.argv = [args[1], *args[2:]]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[:1] == ["-c"] and len(args) > 1:
            sys.argv = ["-c", *args[2:]]
            sys.path.insert(0, "")
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
        elif args and not args[0].startswith("-"):
            sys.argv = list(args)
            sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
            runpy.run_path(args[0], run_name="__main__")
        else:
            code = subprocess.run([sys.executable, *args]).returncode
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        conn.sendall(str(code).encode())
        os._exit(0)


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Path:
    """A stand-in for the venv: ``bin/`` with augkit / python / python3 shims and an ``activate``."""
    folder = tmp_path_factory.mktemp("venv")
    path = str(folder / "server.sock")
    server = subprocess.Popen([sys.executable, __file__, "--serve", path], env=environment(folder))
    deadline = time.monotonic() + 120
    while not os.path.exists(path):
        assert server.poll() is None and time.monotonic() < deadline, "the fork server did not start"
        time.sleep(0.05)
    (folder / "bin").mkdir()
    for name in ("augkit", "python", "python3"):
        shim = folder / "bin" / name
        shim.write_text(SHIM.format(python=sys.executable, socket=path, name=name))
        shim.chmod(0o755)
    activate = (VENV_BIN / "activate").read_text().replace(str(Path(sys.prefix)), str(folder))
    (folder / "bin" / "activate").write_text(activate)
    yield folder
    server.terminate()
    server.wait(timeout=10)


def test_shims_run_what_the_console_script_runs():
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "augkit"]
    assert script.value == "augkit.cli:main"


def test_the_fork_server_reports_failures(workspace):
    ok = run(["bash", "-c", "augkit validate examples/tiny.yaml && python -c 'import sys; print(sys.argv)' x"],
             workspace, "shims")
    assert "examples/tiny.yaml: valid" in ok and "['-c', 'x']" in ok
    bad = subprocess.run(["bash", "-c", "augkit validate examples/tiny.yaml --set generator.options.widht=3"],
                         cwd=workspace, env=environment(workspace / ".venv"), capture_output=True, text=True)
    assert bad.returncode == 2 and "generator.options.widht: unknown key" in bad.stderr


# -- the blocks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the first line inside the fence, 1-based
    lang: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT).as_posix()}:{self.line}"

    def file_path(self) -> str | None:
        """``path`` when the block's first line is a ``# path`` comment naming a file."""
        first = self.text.splitlines()[0] if self.text else ""
        m = re.fullmatch(r"#\s*(\S+\.(?:py|toml))(?:\s.*)?", first.strip())
        return m.group(1) if m else None


def blocks(page: Path) -> list[Block]:
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.group(1), m.group(2), m.group(3).lower()
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence[:3]))
        body = [ln[len(indent):] if ln.startswith(indent) else ln for ln in lines[i + 1 : end]]
        found.append(Block(page, i + 2, lang, "\n".join(body) + "\n"))
        i = end + 1
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def of(*langs: str) -> list:
    return [pytest.param(b, id=b.id) for b in ALL if b.lang in langs]


def test_every_fence_says_what_it_holds():
    bare = [b.id for b in ALL if not b.lang]
    assert not bare, f"fences without an info string (```text for output, ```bash for commands): {bare}"


# -- fixtures: the tiny run, the data trees, a workspace per block --------------------------


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    import augkit

    return augkit.run(ROOT / "examples" / "tiny.yaml", tmp_path_factory.mktemp("session") / "runs",
                      overrides=RUN_OVERRIDES)


@pytest.fixture(scope="session")
def finished_quickstart_run(tmp_path_factory) -> Path:
    import augkit

    return augkit.run(ROOT / "examples" / "tiny.yaml", tmp_path_factory.mktemp("session") / "runs",
                      overrides=[*RUN_OVERRIDES, f"generator={json.dumps(QUICKSTART_GENERATOR)}"])


def _gray(size: int, seed: int, disc: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    rng = np.random.default_rng(seed)
    body = (np.hypot(yy - size / 2, xx - size / 2) < size * 0.4) * 150.0
    spot = (np.hypot(yy - size / 2 - 3, xx - size / 2 + 4) < disc) * 80.0
    return np.clip(body + spot + rng.normal(0, 6, (size, size)) + 20, 0, 255).astype(np.uint8)


def _chest_xray(root: Path) -> None:
    from PIL import Image

    names = {
        "NORMAL": ["IM-0115-0001", "IM-0115-0002", "NORMAL2-IM-1427-0001", "IM-0119-0001"],
        "PNEUMONIA": ["person1_bacteria_1", "person1_bacteria_2", "person3_virus_16", "person5_virus_17"],
    }
    for s, split in enumerate(("train", "val", "test")):
        for folder, stems in names.items():
            (root / split / folder).mkdir(parents=True)
            for i, stem in enumerate(stems[: 4 if split != "val" else 1]):
                stem = stem if split == "train" else stem.replace("person", f"person{s}").replace("IM-0", f"IM-{s}")
                image = _gray(48, i + 10 * s, 3 + 3 * (folder == "PNEUMONIA"))
                Image.fromarray(image).save(root / split / folder / f"{stem}.jpeg")


def _brain(root: Path) -> None:
    from PIL import Image

    for folder, prefix, disc in (("yes", "Y", 8), ("no", "N", 0)):
        (root / folder).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(_gray(48, i, disc)).save(root / folder / f"{prefix}{i + 1}.jpg")


def _dicom(root: Path) -> None:
    from augkit_plugins.dicom.testing import write_dicom

    rows = ["path,label"]
    for c, label in enumerate(("effusion", "clear")):
        for p in range(2):
            series = f"1.2.826.0.1.3680043.8.498.{c + 1}{p + 1}"
            for k in range(3):  # one series of three slices per patient
                write_dicom(root / label / f"p{p}" / f"img{k}.dcm", _gray(32, k + p, 6 * (1 - c)).astype(np.uint16),
                            Modality="CT", PatientID=f"P{c}{p}", SeriesInstanceUID=series, InstanceNumber=k + 1)
            rows.append(f"{label}/p{p},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def _nifti(root: Path) -> None:
    import nibabel as nib

    for c, label in enumerate(("tumor", "control")):
        (root / label).mkdir(parents=True)
        for s in range(2):
            volume = np.stack([_gray(32, s + z, 6 * (1 - c)) for z in range(8)], axis=-1).astype(np.int16)
            nib.save(nib.Nifti1Image(volume, np.eye(4)), root / label / f"sub-{c}{s}_T1w.nii.gz")


def _phantom_folders(root: Path) -> None:
    """train/ and heldout/, one folder of PNGs per chest-phantom class."""
    import augkit
    from PIL import Image

    for seed, split in enumerate(("train", "heldout")):
        source = augkit.build("dataset", "chest-phantom", image_size=32, seed=seed,
                              counts={"normal": 6, "bacteria": 6, "virus": 6})
        for i, sample in enumerate(source.samples()):
            folder = root / split / source.classes[sample.label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(sample.load()).save(folder / f"{i:03d}.png")


DATA_TREES = {"/data/chest_xray": _chest_xray, "/data/brain_tumor_dataset": _brain, "/data/dicom": _dicom,
              "/data/nifti": _nifti, "/data/phantom": _phantom_folders}


@pytest.fixture(scope="session")
def data_trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    trees = {}
    for placeholder, make in DATA_TREES.items():
        trees[placeholder] = base / Path(placeholder).name
        make(trees[placeholder])
    return trees


@pytest.fixture
def substitute(request, data_trees):
    """Text -> text with every placeholder replaced (the tiny run is made only if a block names one)."""

    def apply(text: str) -> str:
        for placeholder, path in data_trees.items():
            text = text.replace(placeholder, str(path))
        text = RUN_FOLDER.sub(lambda m: str(request.getfixturevalue(
            "finished_quickstart_run" if m.group(1) == "quickstart" else "finished_run")), text)
        return text

    return apply


@pytest.fixture
def workspace(tmp_path, venv) -> Path:
    for entry in ROOT.iterdir():
        if entry.name not in NOT_LINKED and not entry.name.endswith(".egg-info"):
            (tmp_path / entry.name).symlink_to(entry)
    (tmp_path / ".venv").symlink_to(venv)
    return tmp_path


def environment(venv: Path) -> dict[str, str]:
    path = os.pathsep.join([str(venv / "bin"), str(VENV_BIN), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "AUGKIT_REPO": str(ROOT),
            "COLUMNS": "160", "NO_COLOR": "1"}


def run(args: list[str], cwd: Path, what: str) -> str:
    venv = (cwd / ".venv").resolve()
    result = subprocess.run(args, cwd=cwd, env=environment(venv), capture_output=True, text=True, timeout=TIMEOUT)
    output = result.stdout + result.stderr
    print(output)  # shown for failures, and with pytest -rP
    assert result.returncode == 0, f"{what} exited {result.returncode}:\n{output[-4000:]}"
    return output


# -- python ---------------------------------------------------------------------------------


def own_files(page: Path) -> dict[str, str]:
    """The page's file blocks that are the reader's own files (not excerpts of the repository)."""
    return {b.file_path(): b.text for b in blocks(page)
            if b.lang == "python" and b.file_path() and not (ROOT / b.file_path()).exists()}


@pytest.mark.parametrize("block", of("python"))
def test_python_block(block: Block, workspace: Path, substitute):
    path = block.file_path()
    if path and (ROOT / path).is_file():
        excerpt = block.text.split("\n", 1)[1]
        assert excerpt.strip() and excerpt in (ROOT / path).read_text(encoding="utf-8"), (
            f"{block.id}: the excerpt is not verbatim in {path}; copy it from the file again")
        return
    for rel, text in own_files(block.page).items():
        target = workspace / rel
        assert not target.parent.resolve().is_relative_to(ROOT), f"{rel} would be written into the repository"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(substitute(text), encoding="utf-8")
    if path is None:
        (workspace / "block.py").write_text(substitute(block.text), encoding="utf-8")
        run([".venv/bin/python", "block.py"], workspace, block.id)
    elif re.fullmatch(r"(.*/)?tests/test_\w+\.py", path):
        run([".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider", path], workspace, block.id)
    else:
        module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        run([".venv/bin/python", "-c", f"import {module}"], workspace, block.id)


# -- bash -----------------------------------------------------------------------------------


def commands(block: Block) -> list[tuple[int, str]]:
    """(doc line, command) pairs; continuation lines joined."""
    out, pending, start = [], "", 0
    for n, line in enumerate(block.text.splitlines(), block.line):
        if block.lang == "console":
            if not (line.startswith("$ ") or pending):
                continue
            line = line[2:] if line.startswith("$ ") else line
        if not pending:
            start = n
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            out.append((start, command))
    return out


def is_python(word: str) -> bool:
    return re.fullmatch(r"python3?(\.\d+)?", Path(word).name) is not None


def check_pip(args: list[str], cwd: Path) -> None:
    import importlib.metadata

    assert args[:1] == ["install"], f"pip {' '.join(args)}: only `pip install` is documented"
    targets = [a for a in args[1:] if not a.startswith("-")]
    assert targets, f"pip {' '.join(args)}: installs nothing"
    for target in targets:
        m = re.fullmatch(r"(.+?)(?:\[([\w,-]+)\])?", target)
        folder, extras = cwd / m.group(1), (m.group(2) or "").split(",")
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        declared = project.get("optional-dependencies", {})
        missing = [e for e in extras if e and e not in declared]
        assert not missing, f"pip install {target}: {project['name']} declares no extra {missing}"
        importlib.metadata.version(project["name"])  # installed in the venv running these tests


def cheaper(command: str, cwd: Path) -> str:
    """One command of a pipeline, rewritten by the CHEAPER rules (or returned unchanged)."""
    words = shlex.split(command, comments=True)
    if not words:
        return command
    prog, args = Path(words[0]).name, words[1:]
    if is_python(words[0]) and args[:2] == ["-m", "venv"]:
        return ":"
    if prog == "pip" or (is_python(words[0]) and args[:2] == ["-m", "pip"]):
        check_pip(args if prog == "pip" else args[2:], cwd)
        return ":"
    if prog == "augkit" and args[:1] == ["run"]:
        kept, skip = [], False
        for a in args[1:]:
            if skip or a in ("--out", "-o"):
                skip = not skip
                continue
            if not a.startswith("--out="):
                kept.append(a)
        return shlex.join([words[0], "validate", *kept])
    if prog == "augkit" and args[:1] == ["evaluate"]:
        kept, skip = [], False
        for a in args:
            if skip or a == "--seeds":
                skip = not skip
                continue
            if not a.startswith("--seeds="):
                kept.append(a)
        return shlex.join([words[0], *kept, "--seeds", "1"])
    if prog == "bash" and args[:1] == ["benchmarks/gpu.sh"]:
        import torch

        if torch.cuda.is_available():
            return command
        scripts = sorted(set(re.findall(r"python (benchmarks/[a-z_]+\.py)", (ROOT / args[0]).read_text())))
        assert scripts, "benchmarks/gpu.sh runs no benchmark script"
        helps = " && ".join(f"python {shlex.quote(str(ROOT / s_))} --help > /dev/null" for s_ in scripts)
        return f"bash -n {shlex.quote(str(ROOT / args[0]))} && {helps}"
    if prog == "torchrun":
        assert "-m" in args, f"{command}: only `torchrun ... -m augkit ...` is documented"
        at = args.index("-m")
        assert args[at + 1 : at + 2] == ["augkit"], f"{command}: only `torchrun ... -m augkit ...` is documented"
        options = [a.split("=")[0] for a in args[:at] if a.startswith("--")]
        checks = "".join(f" && grep -q -e {shlex.quote(o)} <<<\"$help\"" for o in options)
        return f"help=$({shlex.quote(words[0])} --help){checks} && " + cheaper(shlex.join(["augkit", *args[at + 2:]]), cwd)
    if is_python(words[0]) and args[:2] == ["-m", "pytest"]:
        python = str(cwd / words[0]) if "/" in words[0] else words[0]  # the same python, seen from the repository
        collect = [python, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args[2:]]
        return f"(cd {shlex.quote(str(ROOT))} && {shlex.join(collect)})"
    if is_python(words[0]) and args and args[0].endswith(".py"):
        script = args[0]
        if script in RUN_WHOLE_IN_E2E:
            py_compile.compile(str(ROOT / script), doraise=True, cfile=str(cwd / "compiled.pyc"))
            e2e = (ROOT / "tests" / "e2e" / "test_examples.py").read_text()
            assert f'run_example("{Path(script).name}"' in e2e, f"tests/e2e/test_examples.py does not run {script}"
            return ":"
        options = [a.split("=")[0] for a in args[1:] if a.startswith("--")]
        checks = "".join(f" && grep -q -e {shlex.quote(o)} <<<\"$help\"" for o in options)
        return f"help=$({shlex.join([words[0], script, '--help'])}){checks}"
    return command


def rewrite(command: str, cwd: Path) -> str:
    return " && ".join(
        " | ".join(cheaper(part, cwd) for part in re.split(r"\s+\|\s+", segment))
        for segment in re.split(r"\s+&&\s+", command)
    )


@pytest.mark.parametrize("block", of("bash", "sh", "console"))
def test_shell_block(block: Block, workspace: Path, substitute):
    run(["bash", "-c", shell_script(block, workspace, substitute)], workspace, block.id)


def shell_script(block: Block, workspace: Path, substitute=lambda text: text) -> str:
    script = ["set -uo pipefail"]
    for line, command in commands(block):  # any failure in a line (an && list included) stops the block
        script += [f"{{ {rewrite(substitute(command), workspace)}", f"}} || {{ status=$?; echo \"failed (exit $status): "
                   f"the command of doc line {line}\" >&2; exit $status; }}"]
    return "\n".join(script)


def test_a_failing_command_fails_its_block(tmp_path):
    block = Block(ROOT / "README.md", 10, "bash", "true\nfalse && true   # a comment\necho never\n")
    result = subprocess.run(["bash", "-c", shell_script(block, tmp_path)], capture_output=True, text=True)
    assert result.returncode == 1 and "never" not in result.stdout and "doc line 11" in result.stderr


# -- yaml, toml -----------------------------------------------------------------------------

def merge(base: dict, fragment: dict) -> dict:
    from augkit.config.recipe import ROLE_OF_SECTION  # the plugin sections

    out = dict(base)
    for key, value in fragment.items():
        other = isinstance(value, dict) and value.get("name") != base.get(key, {}).get("name")
        replace = key in ROLE_OF_SECTION and other
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not replace:
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("block", of("yaml"))
def test_yaml_block(block: Block, tmp_path: Path, substitute):
    from typer.testing import CliRunner

    from augkit.cli import app
    from augkit.config.recipe import Recipe

    data = yaml.safe_load(substitute(block.text))
    if not isinstance(data, dict) or not set(data) <= set(Recipe.model_fields):
        return  # parsed: not a recipe
    if "dataset" not in data:
        data = merge(yaml.safe_load((ROOT / "examples" / "tiny.yaml").read_text()), data)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(app, ["validate", str(recipe)])
    assert result.exit_code == 0, f"{block.id}: augkit validate refused it:\n{result.output}"


def contained(shown, actual, where: str) -> None:
    if isinstance(shown, dict):
        assert isinstance(actual, dict), where
        for key, value in shown.items():
            assert key in actual, f"{where}.{key}: not in the file"
            contained(value, actual[key], f"{where}.{key}")
    else:
        assert shown == actual, f"{where}: the docs say {shown!r}, the file {actual!r}"


@pytest.mark.parametrize("block", of("toml"))
def test_toml_block(block: Block):
    shown = tomllib.loads(block.text)
    path = block.file_path()
    if path and (ROOT / path).is_file():
        contained(shown, tomllib.loads((ROOT / path).read_text()), path)


if __name__ == "__main__" and sys.argv[1:2] == ["--serve"]:
    serve(sys.argv[2])
