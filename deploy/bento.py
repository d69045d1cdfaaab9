"""`make bento`: build the bento of the pinned model versions, and check that it holds exactly those.

    .venv/bin/python deploy/bento.py [--runtime onnx|native] [--export PATH]

Prints the bento tag on stdout (the last line), progress on stderr.

Why a staging copy of the project: the bento carries `model-pins.json`, which service.py reads when it serves, and
the pins that count are the active settings' (WINE_<KIND>_MODEL, else the file that WINE_MODEL_PINS names, else
./model-pins.json). This script resolves those to concrete tags, writes them as the staging copy's model-pins.json,
and runs `bentoml build` there with WINE_MODEL_PINS pointing at it, so the models BentoML records (service.py's
`BentoModel(<pinned tag>)` attributes) and the pin file inside the bento are the same, whatever the environment of
the build. The developer's own pin file is never written.

Runtimes: the default bento (`wine-quality`) serves every model with ONNX Runtime and carries neither torch nor
scikit-learn. `--runtime native` builds `wine-quality-native` from a copy of bentofile.yaml that adds both (torch as
the local CPU wheel) and sets WINE_RUNTIME=native.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wine_quality.kinds import KINDS  # noqa: E402
from wine_quality.pins import pinned_tag  # noqa: E402
from wine_quality.provenance import git_commit  # noqa: E402
from wine_quality.settings import PIN_FILE, ModelSettings  # noqa: E402
from wine_quality.store import ModelStoreError, find_stored  # noqa: E402

BENTOFILE = ROOT / "bentofile.yaml"
WHEELS = ROOT / "wheels"
BENTOML = str(Path(sys.executable).with_name("bentoml"))
# Files of the project that a bento build can need; bentofile.yaml's include/exclude decide what goes in.
STAGE_SKIP = shutil.ignore_patterns(
    *(".git", ".venv", "venv", "__pycache__", "*.pyc", ".*_cache", "build", "results", ".bentoml", "*.egg-info"),
    *(PIN_FILE, "*.tmp*"),
)


def log(message: str) -> None:
    print(f"bento: {message}", file=sys.stderr, flush=True)


def bentofile() -> dict:
    return yaml.safe_load(BENTOFILE.read_text())


TORCH_WHEEL = "torch-{version}+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"


def native_config(config: dict) -> dict:
    """bentofile.yaml for the native runtime: scikit-learn and the CPU torch wheel added, WINE_RUNTIME=native."""
    wheel = f"wheels/{TORCH_WHEEL.format(version=metadata.version('torch').split('+')[0])}"
    packages = [*config["python"]["packages"], f"scikit-learn=={metadata.version('scikit-learn')}", f"./{wheel}"]
    return {
        **config,
        "name": f"{config['name']}-native",
        "labels": {**config["labels"], "runtime": "native"},
        "include": [*config["include"], wheel],
        "python": {**config["python"], "packages": packages},
        "envs": [*config["envs"], {"name": "WINE_RUNTIME", "value": "native"}],
    }


def check_pins_match_environment(config: dict) -> str | None:
    """Every `name==version` in the bento's packages must be what this environment has; returns a wheel's name."""
    wheel = None
    problems = []
    for spec in config["python"]["packages"]:
        if spec.endswith(".whl"):
            wheel = Path(spec).name
            name, version = wheel.split("-")[:2]
        else:
            name, _, version = spec.partition("==")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed here")
            continue
        if installed != version:
            problems.append(f"{name}: bentofile.yaml pins {version}, this environment has {installed}")
    if problems:
        listed = "\n  ".join(problems)
        sys.exit(f"bento: bentofile.yaml and the project's environment differ (run `make install`?):\n  {listed}")
    return wheel


def pip_find_links() -> list[Path]:
    """The folders pip takes wheels from on this machine (PIP_FIND_LINKS, pip.conf files)."""
    found = os.environ.get("PIP_FIND_LINKS", "").split()
    parser = configparser.ConfigParser()
    parser.read(
        [
            "/etc/pip.conf",
            "/etc/xdg/pip/pip.conf",
            str(Path.home() / ".config/pip/pip.conf"),
            str(Path.home() / ".pip/pip.conf"),
            os.environ.get("PIP_CONFIG_FILE", ""),
        ]
    )
    for section in ("global", "install", "download"):
        found += parser.get(section, "find-links", fallback="").split()
    return [Path(f.removeprefix("file://")) for f in found if not re.match(r"^https?://", f)]


def ensure_wheel(name: str) -> Path:
    """The CPU torch wheel in ./wheels: from pip's find-links folders, else downloaded from PyTorch's CPU index."""
    target = WHEELS / name
    if target.is_file():
        return target
    WHEELS.mkdir(exist_ok=True)
    ignore = WHEELS / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# made by deploy/bento.py: wheels copied here for the bento, never committed\n*\n")
    for folder in pip_find_links():
        if (folder / name).is_file():
            log(f"copying {name} from {folder}")
            shutil.copyfile(folder / name, f"{target}.tmp")
            os.replace(f"{target}.tmp", target)
            return target
    log(f"downloading {name} from https://download.pytorch.org/whl/cpu")
    version = name.split("-")[1]
    pip_download = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(WHEELS)]
    platform = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
    index = ["--index-url", "https://download.pytorch.org/whl/cpu"]
    subprocess.run([*pip_download, *platform, *index, f"torch=={version}"], check=True, stdout=sys.stderr)
    if not target.is_file():
        sys.exit(f"bento: could not get {name}: put it in {WHEELS}")
    return target


def resolve_pins() -> dict[str, str]:
    """The concrete tag each kind is served with under the active settings; each must be in the model store."""
    settings = ModelSettings()
    pins = {}
    try:
        for kind in KINDS:
            pins[kind] = str(find_stored(kind, pinned_tag(kind, settings)).tag)
    except ModelStoreError as exc:
        sys.exit(f"bento: {exc}")
    return pins


def link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build(pins: dict[str, str], config: dict) -> str:
    """`bentoml build` in a staging copy of the project holding these pins; returns the bento tag."""
    with tempfile.TemporaryDirectory(prefix="wine-bento-ctx-") as tmp:
        ctx = Path(tmp, "ctx")
        shutil.copytree(ROOT, ctx, ignore=STAGE_SKIP, copy_function=link_or_copy)
        lock = ctx / PIN_FILE
        lock.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n")
        staged = ctx / "bentofile.yaml"
        staged.unlink()  # a hard link to the project's own file: write a new one, never through the link
        staged.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {**os.environ, "WINE_MODEL_PINS": str(lock), "BENTOML_DO_NOT_TRACK": "true"}
        for name in (f"WINE_{kind.upper()}_MODEL" for kind in KINDS):
            env.pop(name, None)
        labels = [f"{kind}_model={tag.replace(':', '.')}" for kind, tag in pins.items()]
        commit = git_commit()
        if commit:
            labels.append(f"git_commit={commit}")
        cmd = [BENTOML, "build", ".", "--output", "tag"]
        for label in labels:
            cmd += ["--label", label]
        done = subprocess.run(cmd, cwd=ctx, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit(f"bento: bentoml build failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        found = re.findall(r"__tag__:(\S+)", done.stdout)
        if not found:
            sys.exit(f"bento: no tag in the output of bentoml build:\n{done.stdout}\n{done.stderr}")
        return found[-1]


def check_bento(tag: str, pins: dict[str, str]) -> None:
    """The bento records exactly the pinned models, and its own pin file names them."""
    import bentoml

    bento = bentoml.get(tag)
    recorded = sorted(str(m.tag) for m in bento.info.all_models)
    inside = json.loads(Path(bento.path_of(f"src/{PIN_FILE}")).read_text())
    if recorded != sorted(pins.values()) or inside != pins:
        bentoml.delete(tag)
        sys.exit(f"bento: {tag} records models {recorded} and pins {inside}, not the pinned {pins}; deleted it")


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="deploy/bento.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", choices=("onnx", "native"), default="onnx", help="default: %(default)s")
    parser.add_argument("--export", type=Path, help="also write the bento, models included, to this .bento file")
    args = parser.parse_args(argv)

    started = time.monotonic()
    config = bentofile() if args.runtime == "onnx" else native_config(bentofile())
    wheel = check_pins_match_environment(config)
    if wheel:
        ensure_wheel(wheel)
    pins = resolve_pins()
    log(f"building {config['name']} ({args.runtime} runtime) with {', '.join(pins.values())}")
    tag = build(pins, config)
    check_bento(tag, pins)
    log(f"built {tag} in {time.monotonic() - started:.1f} s")
    if args.export:
        import bentoml

        path = bentoml.export_bento(tag, str(args.export.resolve()))
        log(f"exported {tag} to {path}")
    print(tag)
    return tag


if __name__ == "__main__":
    main()
