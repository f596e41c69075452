"""One vocabulary: every decision the reserve scripts can name is a `Decision`, and the codec
decodes a reply's decision into one."""

from __future__ import annotations

import re
from importlib import resources

from routing import codec
from routing.model import Mode
from routing.results import Decision

# every script, wherever the decision code lives among them
DECIDE = "\n".join(
    f.read_text()
    for f in resources.files("routing").joinpath("lua").iterdir()
    if f.name.endswith(".lua")
)


def _script_decisions() -> set[str]:
    """The decisions the scripts spell: its literals, `backup:<why>` and `pinned*` rewrites."""
    literal = set(re.findall(r"^\s*(?:local )?decision = '([^']+)'", DECIDE, re.M))
    literal |= set(re.findall(r"'(inherited[\w:]*)'", DECIDE))
    literal |= set(re.findall(r"\{'R', \w+, mode, cost, '(\w+)'\}", DECIDE))
    whys = set(re.findall(r"'(no_fast_hours|no_active_primary|no_relax_primary)'", DECIDE))
    backups = {f"backup:{why}" for why in whys}
    pinned = {re.sub("^inherited", "pinned", d) for d in literal if d.startswith("inherited")}
    return literal | backups | pinned


def test_every_decision_the_scripts_name_is_a_decision() -> None:
    named = _script_decisions()
    assert {"routed", "inherited", "backup:no_active_primary", "pinned"} <= named
    assert named <= {d.value for d in Decision}


def test_the_codec_decodes_a_decision_into_the_enum() -> None:
    got = codec.reservation([b"R", b"3", b"relax", b"0", b"inherited_relax:setting_relax", 0, b"t"])
    assert got.decision is Decision.INHERITED_RELAX_SETTING
    assert (got.bot_id, got.mode, got.task_id) == (3, Mode.RELAX, "t")


def test_pinned_names_the_decisions_a_key_chose_the_account_for() -> None:
    assert {d for d in Decision if d.pinned} == {
        Decision.PINNED,
        Decision.PINNED_RELAX_SETTING,
        Decision.PINNED_RELAX_NO_FAST_TIME,
    }


def test_a_decision_this_version_does_not_know_is_kept_as_written() -> None:
    """A newer replica's decision (a rolling upgrade) reads as it was written, not as an error;
    it is no member of the vocabulary (the metrics label reports it as `other`)."""
    got = codec.reservation([b"R", b"3", b"fast", b"60", b"routed:somewhere_new", 0, b"t"])
    assert (got.decision, isinstance(got.decision, Decision)) == ("routed:somewhere_new", True)
    assert got.decision not in set(Decision)
    assert not got.decision.pinned


def test_every_account_field_the_scripts_use_is_one_acct_save_writes() -> None:
    """acct_save compares and writes the fields accounts.lua's FIELDS lists, no others: a
    field a script sets on an account (`a`, `old`, `x`) but missing from it would be lost."""
    listed = re.search(r"local FIELDS = \{([^}]*)\}", DECIDE)
    assert listed is not None
    fields = set(re.findall(r"'(\w+)'", listed.group(1)))
    used = set(re.findall(r"\b(?:a|old|x)\.([a-z]+)\b", DECIDE)) - {"id"}
    numeric = re.search(r"local NUMERIC_FIELDS = \{([^}]*)\}", DECIDE)
    assert numeric is not None
    used |= set(re.findall(r"'(\w+)'", numeric.group(1)))
    live = re.search(r"local PACE_LIVE = \{([^}]*)\}", DECIDE)
    assert live is not None
    used |= set(re.findall(r"'(\w+)'", live.group(1)))
    assert len(used) > 35 and used <= fields, used - fields
