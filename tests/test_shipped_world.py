"""The shipped world: its files verify, a corrupted copy is refused naming the file, installing it gives a world
the pipeline accepts (and builds nothing), ``world.build: true`` and presets without an artifact build."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

import paced.world
from paced.io import read_json, read_jsonl
from paced.pipeline import world as world_stage
from paced.pipeline.suite import Section
from paced.world import WorldConfig, shipped
from paced.world.shipped import (
    MANIFEST,
    ShippedWorld,
    ShippedWorldError,
    compare_manifests,
    install_world,
    manifest_digest,
    shipped_for,
    shipped_world,
    verify,
    write_manifest,
)

ROOT = Path(__file__).resolve().parents[1]
WORLD_FILES = {"world.json", "train.jsonl", "eval_math.jsonl", "eval_hard.jsonl", "eval_arith.jsonl", "probe.jsonl",
               "teacher/model.safetensors", "teacher/config.json", "teacher/tokenizer.json",
               "student/model.safetensors", "student/config.json", "student/tokenizer.json"}


def _suite(preset: str = "default", seed: int = 0, **extra: object) -> SimpleNamespace:
    return SimpleNamespace(world=Section({"preset": preset, "seed": seed, **extra}))


def _fake_artifact(root: Path, name: str = "default-v1", payload: bytes = b"weights") -> Path:
    """A small world folder with a MANIFEST, standing in for the real artifact where only the mechanics matter."""
    art = root / name
    (art / "student").mkdir(parents=True)
    (art / "student" / "model.safetensors").write_bytes(payload)
    (art / "world.json").write_text('{"sizes": {}}\n', encoding="utf-8")
    write_manifest(art, ShippedWorld(preset="default", seed=0, version=1))
    return art


def test_the_shipped_default_world_verifies_and_says_what_built_it():
    path = shipped_world("default")
    manifest = verify(path)
    assert WORLD_FILES <= set(manifest["files"])
    assert (manifest["name"], manifest["preset"], manifest["seed"], manifest["workers"]) == ("default-v1", "default",
                                                                                             0, 2)
    assert manifest["paced_version"] and manifest["git"] and manifest["versions"]["torch"]
    sizes = read_json(path / "world.json")["sizes"]
    assert {n: len(read_jsonl(path / f"{n}.jsonl")) for n in sizes} == sizes
    assert sum(f["bytes"] for f in manifest["files"].values()) < 20e6  # "a few MB": package data, not a download
    assert manifest_digest(path) == hashlib.sha256((path / MANIFEST).read_bytes()).hexdigest()


def test_sha256_matches_hashlib_and_the_manifest_lists_every_file(tmp_path):
    art = _fake_artifact(tmp_path, payload=b"abc")
    manifest = json.loads((art / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["files"]["student/model.safetensors"] == {
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "bytes": 3}  # sha256("abc")
    assert set(manifest["files"]) == {"student/model.safetensors", "world.json"}


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "student/model.safetensors").write_bytes(b"weightz"), r"student/model\.safetensors has sha256"),
    (lambda d: (d / "student/model.safetensors").unlink(), r"student/model\.safetensors is missing"),
    (lambda d: (d / "student/extra.bin").write_bytes(b"x"), r"student/extra\.bin is not in its MANIFEST"),
    (lambda d: (d / MANIFEST).unlink(), r"MANIFEST\.json is missing"),
])
def test_a_damaged_copy_is_refused_naming_the_file_and_the_fix(tmp_path, damage, message):
    art = _fake_artifact(tmp_path)
    verify(art)
    damage(art)
    with pytest.raises(ShippedWorldError, match=message) as err:
        verify(art)
    assert "\n" not in str(err.value) and "reinstall paced" in str(err.value) and "world.build: true" in str(err.value)


def test_a_corrupted_copy_of_the_real_artifact_is_refused(tmp_path):
    copy = tmp_path / "world"
    shutil.copytree(shipped_world("default"), copy)
    weights = copy / "teacher" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ShippedWorldError, match=r"teacher/model\.safetensors has sha256"):
        verify(copy)


def test_the_command_line_verifies_and_compares_in_one_line(tmp_path, caplog):
    good = _fake_artifact(tmp_path / "a", payload=b"one")
    other = _fake_artifact(tmp_path / "b", payload=b"two")
    with caplog.at_level("INFO"):
        assert shipped.main(["verify", str(good)]) == 0
        assert shipped.main(["compare", str(good), str(other)]) == 0
        (good / "world.json").write_text("{}\n", encoding="utf-8")
        assert shipped.main(["verify", str(good)]) == 1
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].endswith(f"all 2 files match {MANIFEST} (digest {manifest_digest(good)[:16]})")
    assert lines[1] == "1 file(s) differ\n  student/model.safetensors"
    assert "world.json has sha256" in lines[2] and "\n" not in lines[2]


def test_install_refuses_a_corrupted_artifact_and_leaves_nothing(tmp_path, monkeypatch):
    _fake_artifact(tmp_path / "shipped", payload=b"good")
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "shipped")
    (tmp_path / "shipped/default-v1/student/model.safetensors").write_bytes(b"evil")
    out = tmp_path / "results" / "world"
    with pytest.raises(ShippedWorldError, match=r"model\.safetensors"):
        install_world("default", out)
    assert not out.exists() and not (out.parent / ".world.installing").exists()


def test_only_the_preset_and_seed_it_was_built_from_are_shipped():
    assert shipped_for("default", 0) == ShippedWorld("default", 0, 1)
    assert shipped_for("default", 1) is None and shipped_for("tiny", 0) is None and shipped_for("none", 0) is None
    with pytest.raises(ValueError, match="unknown shipped world 'tiny'"):
        shipped_world("tiny")


def test_the_default_preset_installs_the_shipped_world_and_builds_nothing(tmp_path, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("build_world called for a shipped world")

    monkeypatch.setattr(paced.world, "build_world", no_build)
    p = world_stage.params(_suite(build=False))
    assert p == {"preset": "default", "seed": 0, "shipped": {
        "name": "default-v1", "manifest_sha256": manifest_digest(shipped_world("default"))}}
    world_json = tmp_path / "results" / "world" / "world.json"
    (world_json.parent / "teacher").mkdir(parents=True)  # a stale leftover is replaced
    world_stage.run(p, str(world_json), threads=2)
    assert world_json.is_file() and (world_json.parent / "student" / "model.safetensors").is_file()
    assert verify(world_json.parent)["name"] == "default-v1"
    assert world_json.read_bytes() == (shipped_world("default") / "world.json").read_bytes()


def test_the_installed_student_and_tokenizer_load(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    install_world("default", tmp_path / "world")
    tok = AutoTokenizer.from_pretrained(tmp_path / "world" / "student")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "world" / "student")
    row = read_jsonl(tmp_path / "world" / "eval_arith.jsonl")[0]
    ids = tok(row["prompt"], return_tensors="pt").input_ids
    assert model(ids).logits.shape == (1, ids.shape[1], model.config.vocab_size)


@pytest.mark.parametrize(("preset", "seed", "build"), [("default", 0, True), ("default", 3, False), ("tiny", 0, False)])
def test_build_true_another_seed_or_an_unshipped_preset_build(tmp_path, monkeypatch, preset, seed, build):
    calls = []
    monkeypatch.setattr(paced.world, "build_world", lambda cfg, out, **kw: calls.append((cfg, Path(out), kw)))
    p = world_stage.params(_suite(preset, seed, build=build))
    assert p == {"preset": preset, "seed": seed}  # a built world's params are what they were before shipping
    world_stage.run(p, str(tmp_path / "world" / "world.json"), threads=4)
    [(cfg, out, kw)] = calls
    assert (cfg, out, kw) == (WorldConfig.preset(preset, seed=seed), tmp_path / "world",
                              {"overwrite": True, "workers": 2})


def test_params_change_when_the_artifact_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "v1")
    _fake_artifact(tmp_path / "v1", payload=b"first build")
    before = world_stage.params(_suite())
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path / "v2")
    _fake_artifact(tmp_path / "v2", payload=b"second build")
    after = world_stage.params(_suite())
    assert before["shipped"]["manifest_sha256"] != after["shipped"]["manifest_sha256"]
    assert compare_manifests(json.loads((tmp_path / "v1/default-v1" / MANIFEST).read_text(encoding="utf-8")),
                             json.loads((tmp_path / "v2/default-v1" / MANIFEST).read_text(encoding="utf-8"))) == [
        "student/model.safetensors"]


def test_run_refuses_params_from_another_artifact(tmp_path):
    p = world_stage.params(_suite())
    p["shipped"] = {**p["shipped"], "manifest_sha256": "0" * 64}
    with pytest.raises(ValueError, match="changed since the workflow started"):
        world_stage.run(p, str(tmp_path / "world" / "world.json"))


def test_package_data_globs_cover_every_artifact_file():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["paced"]
    pkg = ROOT / "paced"
    matched = {p.relative_to(pkg).as_posix() for pat in patterns for p in pkg.glob(pat) if p.is_file()}
    art = shipped_world("default")
    files = {f"world/shipped/{art.name}/{rel}" for rel in [*verify(art)["files"], MANIFEST]}
    assert files <= matched, sorted(files - matched)[:5]


@pytest.mark.slow
def test_the_wheel_ships_the_artifact(tmp_path):
    src = tmp_path / "src"  # a copy, so that setuptools' build/ folder is not left in the checkout
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "paced", src / "paced", ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = tmp_path.glob("paced-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    art = shipped_world("default")
    expected = {f"paced/world/shipped/{art.name}/{rel}" for rel in [*verify(art)["files"], MANIFEST]}
    assert expected <= names, sorted(expected - names)[:5]
