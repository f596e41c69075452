"""Each pool script carries only the library definitions it uses (routing.prelude)."""

from __future__ import annotations

import pytest

from routing.prelude import (
    BEGIN,
    LIBRARIES,
    _libraries,
    compose,
    needed,
    read_library,
    used_names,
)
from routing.scripts import SCRIPT_NAMES, read, source


def _defined(text: str) -> set[str]:
    return {name for d in needed(f"{BEGIN}\n{text}") for name in d.defines}


def test_a_script_leaves_out_the_definitions_it_does_not_use() -> None:
    extend = source("extend_lease")
    for absent in ("local function acct_save", "local TN", "local function decide_root",
                   "local NUMERIC", "tenants.lua:", "staging.lua:"):  # fmt: skip
        assert absent not in extend, absent
    per_call = {"BASE", "NOW", "NOW_S", "K", "IX", "loaded", "CALL", "begin", "keyset",
                "K_NAMES", "IXP_NAMES", "IXB_NAMES", "KEYSETS", "NKEYSETS",
                "KEYSET_CAP"}  # fmt: skip
    assert _defined(read("routing", "extend_lease")) == per_call | {"k_res", "n2s"}
    reserve = _defined(read("routing", "reserve_root"))
    assert {"decide_root", "decide_pinned", "reserve", "stage", "TN.charge"} <= reserve
    assert not {"dispatch", "adopt_legacy", "unstage", "remember"} & reserve
    settle = _defined(read("routing", "settle"))
    assert {"dispatch", "decide_root", "unstage", "acct_save", "TN.refund"} <= settle
    assert not {"conclude", "stage", "change_state"} & settle


def test_a_definition_uses_only_definitions_before_it() -> None:
    """A Lua local is seen only by the lines after it: each library uses only definitions of
    itself (earlier in it) or of the libraries before it."""
    _, definitions = _libraries()
    position = {name: index for index, d in enumerate(definitions) for name in d.defines}
    for index, definition in enumerate(definitions):
        for name in definition.uses & position.keys():
            assert position[name] < index, (definition.library, sorted(definition.defines), name)


def test_each_library_is_used_and_its_header_comes_with_it() -> None:
    headers, _ = _libraries()
    every = "\n".join(read("routing", name) for name in SCRIPT_NAMES)
    assert {d.library for d in needed(every)} == set(LIBRARIES)
    for library in LIBRARIES:
        assert headers[library].startswith(f"-- {library}.lua: "), library
    for name in SCRIPT_NAMES:
        carried = {d.library for d in needed(f"{BEGIN}\n{read('routing', name)}")}
        for library in LIBRARIES:
            assert (headers[library] in source(name)) == (library in carried), (name, library)


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_every_kept_definition_is_used(name: str) -> None:
    body = read("routing", name)
    kept = needed(body)
    uses = used_names(body).union(*(d.uses for d in kept))
    for definition in kept:
        assert definition.defines & uses, sorted(definition.defines)


def test_the_libraries_split_into_definitions_without_losing_a_line() -> None:
    assert needed("return 1") == []
    every_name = " ".join(name for lib in LIBRARIES for name in used_names(read_library(lib)))
    full = compose(every_name)
    for library in LIBRARIES:
        for line in read_library(library).splitlines():
            assert line in full, (library, line)


def test_a_library_line_that_is_no_definition_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from routing import prelude

    monkeypatch.setattr(prelude, "read_library", lambda name: "local A = 1\nA = 2\n")
    prelude._libraries.cache_clear()
    try:
        with pytest.raises(ValueError, match="not a definition"):
            prelude.compose("return A")
    finally:
        monkeypatch.undo()
        prelude._libraries.cache_clear()
