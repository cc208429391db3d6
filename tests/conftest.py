"""Shared fixtures: real components everywhere (real model, chromadb, SQLite, LangGraph).

The classifier is trained once per machine and cached under GATEKEEPER_CACHE
(keyed by a hash of its inputs), so only the first run pays for training.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# gates opened from settings watch their policy files (default every 5 s); the tests that edit policies call
# reload_policy themselves and test_policy_watch.py turns the watcher on where it is the subject
os.environ.setdefault("GATEKEEPER_POLICY_WATCH_S", "0")

from gatekeeper.chroma_store import ChromaMemoryStore  # noqa: E402
from gatekeeper.embeddings import Embedder  # noqa: E402
from gatekeeper.gate import Gatekeeper  # noqa: E402
from gatekeeper.policy import load_policy  # noqa: E402
from gatekeeper.reviewer import Reviewer  # noqa: E402
from gatekeeper.settings import GatekeeperSettings  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def rules_fired(rules, text: str) -> set[str]:
    """The ids of the rules (a ``RuleEngine``: ``reviewer.rules``) that fire on an agent's write of ``text``, read as
    the gate reads it: normalised, decoded and cut into its review texts."""
    from gatekeeper.models import SourceKind
    from gatekeeper.normalize import normalize
    from gatekeeper.segments import review_texts

    return {h.rule_id for h in rules.check(review_texts(normalize(text).all_texts), SourceKind.agent).hits}


@pytest.fixture(scope="session")
def policy():
    return load_policy(REPO / "policies")


@pytest.fixture
def pdir(tmp_path):
    """A copy of the shipped policy directory, to edit."""
    d = tmp_path / "policy"
    shutil.copytree(REPO / "policies", d)
    return d


@pytest.fixture(scope="session")
def embedder():
    return Embedder()


@pytest.fixture(scope="session")
def reviewer(policy, embedder):
    r = Reviewer(policy, embedder=embedder)
    r.warm_up()
    return r


def make_gate(data_dir: Path, reviewer: Reviewer, memory_store=None, **kw) -> Gatekeeper:
    store = memory_store if memory_store is not None else ChromaMemoryStore(
        path=data_dir / "chroma", embed=reviewer.embedder)
    return Gatekeeper.open(GatekeeperSettings(data_dir=data_dir, policy_dir=REPO / "policies"),
                           memory_store=store, policy=reviewer.policy, reviewer=reviewer, **kw)


def policy_with_overdue_action(out: Path, overdue_action: str) -> Path:
    """A copy of the shipped policy in ``out`` with ``escalation.overdue_action`` set."""
    out.mkdir()
    for f in (REPO / "policies").iterdir():
        if f.is_file():
            text = f.read_text()
            if f.name == "policy.yaml":
                assert "  overdue_action: flag\n" in text
                text = text.replace("  overdue_action: flag\n", f"  overdue_action: {overdue_action}\n")
            (out / f.name).write_text(text)
    return out


def assert_policy_edit_commits_the_held_write(tmp_path: Path, reviewer: Reviewer, held_write, section: str,
                                             key: str, value) -> None:
    """``policy diff`` of an edit safety staff may make (``policy.yaml``'s ``section.key`` set to ``value``) shows,
    before it is in force, that it would commit ``held_write``, held under the shipped policy, and change nothing
    else (an ordinary note written beside it stays committed)."""
    import shutil

    import yaml

    from gatekeeper.models import MemoryWrite, ProposalState, Provenance
    from gatekeeper.policy_diff import diff_policies

    gate = make_gate(tmp_path / "data", reviewer)
    try:
        held = gate.submit(held_write)
        note = gate.submit(MemoryWrite(content="The billing export runs at 02:00 UTC.", namespace=held_write.namespace,
                                       provenance=Provenance(agent_id=held_write.provenance.agent_id)))
        assert held.state is ProposalState.pending and note.state is ProposalState.committed
        out = tmp_path / "candidate"
        shutil.copytree(REPO / "policies", out)
        settings = yaml.safe_load((out / "policy.yaml").read_text())
        settings[section][key] = value
        (out / "policy.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
        result = diff_policies(gate.registry, reviewer, load_policy(out))
        assert result.transitions == {"escalate -> commit": 1} and result.newly_committed == 1
        assert result.changed[0].proposal_id == held.proposal.id
    finally:
        gate.close()


def with_thresholds(reviewer: Reviewer, **changes) -> Reviewer:
    """``reviewer`` for a copy of its policy with these ``thresholds`` changed, with the same classifier."""
    th = reviewer.policy.thresholds.model_copy(update=changes)
    return reviewer.for_policy(reviewer.policy.model_copy(update={"thresholds": th}), classifier=reviewer.classifier)


@contextmanager
def ledger_refusing(gate: Gatekeeper, event: str = "proposal.decided"):
    """Within the block, the gate's ledger refuses every write holding an ``event`` entry with ENOSPC (the
    rest is written): what the registry holds then lacks its ledger entry, as after a crash before it."""
    real = gate.ledger.append_many

    def append_many(entries):
        if any(e == event for e, _ in entries):
            raise OSError(errno.ENOSPC, f"No space left on device (injected for {event})")
        return real(entries)

    gate.ledger.append_many = append_many
    try:
        yield
    finally:
        gate.ledger.append_many = real


@pytest.fixture
def gate(tmp_path, reviewer):
    g = make_gate(tmp_path / "data", reviewer)
    yield g
    g.close()


@pytest.fixture(params=["inmemory", "chroma"])
def gstore(request, tmp_path, reviewer):
    """A ``GatedStore`` over an ``InMemoryStore`` and over a ``ChromaMemoryStore``, with its own gate."""
    from langgraph.store.memory import InMemoryStore

    from gatekeeper.gated_store import GatedStore

    if request.param == "inmemory":
        inner = InMemoryStore()
    else:
        inner = ChromaMemoryStore(path=tmp_path / "chroma-inner", embed=reviewer.embedder)
    gate = make_gate(tmp_path / "data", reviewer, memory_store=inner)
    store = GatedStore(inner, gate=gate, agent_id="agent-1")
    yield store
    gate.close()


@pytest.fixture
def accounts(gate):
    """The reviewer accounts of ``gate``'s registry."""
    from gatekeeper.accounts import AccountStore

    store = AccountStore(gate.registry.path)
    yield store
    store.close()



#: the password of the accounts ``review_web`` makes
WEB_PASSWORD = "correct horse battery"


@pytest.fixture
def review_web(gate, accounts):
    """The web review app over ``gate`` with a reviewer (``bob``) and an admin (``root-admin``): (app, their API
    tokens by name)."""
    from gatekeeper.review_service import ReviewService
    from gatekeeper.web import create_app

    tokens = {}
    for name, role in (("bob", "reviewer"), ("root-admin", "admin")):
        _, tokens[name] = accounts.add(name, WEB_PASSWORD, role=role)
    return create_app(ReviewService(gate), accounts, secret_key=b"s" * 64), tokens


def web_login(app, name: str, password: str = WEB_PASSWORD):
    """A TestClient logged in to ``app`` as ``name`` through the login form (redirects not followed)."""
    import re

    from fastapi.testclient import TestClient

    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": name, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text
    return client
