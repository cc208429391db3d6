"""A wheel install (not the editable one of the README) carries what the gate needs at run time: the default
policy, the corpus and the review queue's templates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gatekeeper.policy import load_policy

from conftest import REPO

pytestmark = pytest.mark.slow


def test_a_wheel_install_finds_the_default_policy_and_its_data(tmp_path):
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    src = tmp_path / "src"
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    wheel, = (tmp_path / "dist").glob("gatekeeper-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)

    probe = """
import json, gatekeeper
from gatekeeper.corpus import load_corpus
from gatekeeper.policy import default_policy_dir, load_policy
from gatekeeper.web.app import HERE
p = load_policy()
print(json.dumps({"package": gatekeeper.__file__, "policy_dir": str(default_policy_dir()), "hash": p.hash,
                  "categories": sorted(p.categories), "dev_rows": len(load_corpus("dev")),
                  "templates": sorted(x.name for x in (HERE / "templates").iterdir())}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("GATEKEEPER_POLICY_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["package"]).is_relative_to(site)
    assert Path(got["policy_dir"]) == site / "gatekeeper" / "policies_default"
    repo_policy = load_policy(REPO / "policies")
    assert got["hash"] == repo_policy.hash and got["categories"] == sorted(repo_policy.categories)
    from gatekeeper.corpus import load_corpus

    assert got["dev_rows"] == len(load_corpus("dev")) > 1000
    assert "queue.html" in got["templates"]
    # a type checker reads the package's annotations (no py.typed: mypy said import-untyped), and the
    # dependencies say what the code needs: Overwrite came in langgraph 1.0.2, and the packages imported directly
    assert (site / "gatekeeper" / "py.typed").is_file()
    # the license it declares ships with it
    license_file, = site.glob("gatekeeper-*.dist-info/licenses/LICENSE")
    assert "Apache License" in license_file.read_text() and "Version 2.0" in license_file.read_text()
    meta, = site.glob("gatekeeper-*.dist-info/METADATA")
    requires = [ln.split(":", 1)[1].strip() for ln in meta.read_text().splitlines() if ln.startswith("Requires-Dist:")]
    assert "langgraph<2,>=1.1.4" in requires, requires
    assert {"click", "scipy", "tokenizers", "starlette", "markupsafe", "typing-extensions"} <= {
        r.split(">")[0].split("<")[0].split("=")[0].split(";")[0].strip().lower() for r in requires}
