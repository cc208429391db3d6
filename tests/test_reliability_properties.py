"""Property-based tests: the normaliser under obfuscation, the policy loader under mutation."""

from __future__ import annotations

import base64
import sys
import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gatekeeper.models import SourceKind
from gatekeeper.normalize import normalize
from gatekeeper.policy import Policy, PolicyError, load_policy

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import adversarial as adv  # noqa: E402  (the obfuscations of the benchmark)

ZERO_WIDTH = set("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad\u034f")
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")

PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=10)
# payloads shorter than 12 bytes (16 base64 characters) are not decoded, by design:
# too short to hold a belief, and decoding them would turn ordinary tokens into noise
sentences = st.lists(words, min_size=3, max_size=12).map(" ".join).filter(lambda s: len(s) >= 16)
junk = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
obfuscations = st.sampled_from([n for n in adv.TRANSFORMS if n != "buried"])


@st.composite
def obfuscated(draw):
    """A sentence run through one to three of the benchmark's obfuscations, with junk around it."""
    s = draw(sentences)
    for name in draw(st.lists(obfuscations, min_size=1, max_size=3)):
        s = adv.TRANSFORMS[name](s)
    return draw(junk) + s + draw(junk)


texts = st.one_of(junk, obfuscated(), st.text(max_size=300))


# ------------------------------------------------------------------ normaliser: safety
@PROPS
@given(texts)
def test_normalize_never_raises_and_hides_nothing(s):
    r = normalize(s)
    assert "normalize_error" not in r.findings
    for t in r.all_texts:
        assert not (set(t) & (ZERO_WIDTH | BIDI)), repr(t)
        assert not any(0xE0000 <= ord(c) <= 0xE007F for c in t)
        assert not any(unicodedata.category(c) in ("Cf", "Cs") for c in t)


@PROPS
@given(texts)
def test_normalize_is_idempotent(s):
    once = normalize(s)
    assert normalize(once.text).text == once.text
    for v in once.variants:
        assert normalize(v).text == v


# ------------------------------------------------------------------ normaliser: undoes each obfuscation
def _seen(s: str, obf: str) -> bool:
    """Is the plain sentence recovered in one of the texts the reviewer will read?"""
    want = normalize(s).text
    return any(want in t for t in normalize(obf).all_texts)


@PROPS
@given(sentences)
def test_zero_width_and_homoglyphs_fold_back_exactly(s):
    plain = normalize(s).text
    assert normalize(adv.zero_width(s)).text == plain
    assert normalize(adv.homoglyphs(s)).text == plain
    assert normalize(adv.zero_width(adv.homoglyphs(s))).text == plain


@PROPS
@given(sentences, st.sampled_from(["bidi", "base64", "hex", "html_hidden", "md_hidden"]))
def test_hidden_and_encoded_payloads_are_recovered(s, name):
    if name == "base64":
        # a token in one case is not read as base64 (paths, words, AKIA-style keys; base64 of prose mixes cases):
        # a few lower-case sentences encode to one, e.g. "ngarg ngarg ngar" -> "bmdhcmcgbmdhcmcgbmdhcg=="
        body = base64.b64encode(s.encode()).decode().rstrip("=")
        assume(not (body.islower() or body.isupper() or body.isdigit()))
    assert _seen(s, adv.TRANSFORMS[name](s)), (name, s)


@PROPS
@given(sentences)
def test_encodings_nest(s):
    assert _seen(s, adv.b64(adv.zero_width(s)))
    assert _seen(s, adv.html_hidden(adv.homoglyphs(s)))
    assert _seen(s, adv.hexed(adv.bidi(s)))


# ------------------------------------------------------------------ policy loader under mutation
POLICY_FILES = {p.name: p.read_text() for p in sorted((REPO / "policies").glob("*.yaml"))}


@st.composite
def mutated_policy(draw):
    fname = draw(st.sampled_from(sorted(POLICY_FILES)))
    ls = POLICY_FILES[fname].splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not ls:
            break
        i = draw(st.integers(0, len(ls) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "junk", "indent", "truncate",
                                   "key", "bool", "empty_value"]))
        line = ls[i]
        if op == "delete":
            del ls[i]
        elif op == "duplicate":
            ls.insert(i, line)
        elif op == "swap" and i + 1 < len(ls):
            ls[i], ls[i + 1] = ls[i + 1], ls[i]
        elif op == "number":
            new = draw(st.sampled_from(["-1", "0", "1", "1.5", "99", "nan", ".inf", "null", "'0.5'", "[]", "{}"]))
            import re

            ls[i] = re.sub(r"\b\d+(\.\d+)?\b", new, line, count=1)
        elif op == "junk":
            pos = draw(st.integers(0, len(line)))
            ls[i] = line[:pos] + draw(st.text(alphabet=":-[]{}'\"#&*!|>%@`\t ", min_size=1, max_size=4)) + line[pos:]
        elif op == "indent":
            ls[i] = draw(st.sampled_from(["", " ", "   ", "\t"])) + line.lstrip()
        elif op == "truncate":
            ls = ls[:i]
        elif op == "key" and ":" in line:
            k, _, rest = line.partition(":")
            ls[i] = k.rstrip() + draw(st.sampled_from(["x", "_", "s"])) + ":" + rest
        elif op == "bool":
            ls[i] = line.replace("false", "true").replace("park", "allow").replace("quarantine", "commit")
        elif op == "empty_value" and ":" in line:
            ls[i] = line.partition(":")[0] + ":"
    return fname, "\n".join(ls) + "\n"


def _not_allow_all(p: Policy) -> None:
    assert p.categories, "a policy without categories commits everything"
    assert set(p.trust) == set(SourceKind)
    for cid, cat in p.categories.items():
        assert 0 < cat.threshold <= 1 and cat.action in ("quarantine", "escalate")
    assert 0 < p.thresholds.uncertain_below < 1
    assert p.hash and p.source_files


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_policy())
def test_mutated_policy_loads_valid_or_fails_with_file_and_message(mut):
    fname, text = mut
    assume(text != POLICY_FILES[fname] + ("" if POLICY_FILES[fname].endswith("\n") else "\n"))
    with tempfile.TemporaryDirectory() as d:
        for name, content in POLICY_FILES.items():
            (Path(d) / name).write_text(text if name == fname else content)
        try:
            policy = load_policy(d)
        except PolicyError as exc:
            assert exc.problems
            for file, line, msg in exc.problems:
                assert file and isinstance(file, str) and str(d) in file, exc.problems
                assert msg and isinstance(msg, str)
                assert line is None or (isinstance(line, int) and line >= 1)
            return
        # anything else is a bug: only PolicyError may escape (pytest reports it)
        _not_allow_all(policy)


def test_policy_loader_refuses_the_obvious_allow_alls(tmp_path):
    for files in ({"policy.yaml": ""}, {"policy.yaml": "version: 1\ncategories: {}\n"},
                  {"policy.yaml": "{}\n"}, {"policy.yaml": "- just\n- a list\n"}):
        d = tmp_path / str(abs(hash(str(files))))
        d.mkdir()
        for n, c in files.items():
            (d / n).write_text(c)
        with pytest.raises(PolicyError):
            load_policy(d)
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "does-not-exist")
