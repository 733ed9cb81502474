"""The ``zodc`` parser's help: every option documented, each default shown at most once, every
subcommand's ``--help`` renders. Builds the parser only; nothing is fitted."""

import argparse
import re

import pytest

from zodc.cli import build_parser


def _subparsers(parser, path=()):
    """(path, parser) for the top-level parser and every (nested) subcommand."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _subparsers(child, path + (name,))


def _options(parser):
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _rendered(parser, action) -> str:
    """The option's block as ``--help`` prints it (invocation and help, wrapped)."""
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return formatter.format_help()


PARSERS = list(_subparsers(build_parser()))
IDS = [" ".join(path) or "zodc" for path, _ in PARSERS]


def test_every_subcommand_is_walked():
    names = {" ".join(path) for path, _ in PARSERS}
    assert {"condense", "datasets", "models", "audit", "schema", "schema draft", "schema check"} <= names
    assert "bench" not in names  # benchmarks live outside the package (python -m benchmarks.runner)


@pytest.mark.parametrize("path, parser", PARSERS, ids=IDS)
def test_every_option_has_help(path, parser):
    missing = [a.option_strings[0] for a in _options(parser) if a.help is not argparse.SUPPRESS
               and not (a.help or "").strip()]
    assert not missing, f"zodc {' '.join(path)}: options without help: {missing}"


@pytest.mark.parametrize("path, parser", PARSERS, ids=IDS)
def test_default_is_shown_at_most_once(path, parser):
    twice = {}
    for action in _options(parser):
        if action.help is argparse.SUPPRESS:
            continue
        text = _rendered(parser, action)
        count = len(re.findall("default", text, flags=re.IGNORECASE))
        if count > 1 or "(default: None)" in text or "(default: )" in text:
            twice[action.option_strings[0]] = " ".join(text.split())
    assert not twice, f"zodc {' '.join(path)}: defaults shown twice or empty: {twice}"


@pytest.mark.parametrize("path, parser", PARSERS, ids=IDS)
def test_help_renders(path, parser, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: zodc")
    for action in _options(parser):
        if action.help is not argparse.SUPPRESS:
            assert action.option_strings[0] in out


# Retired research options of `zodc condense`: accepted for one release with a FutureWarning, hidden
# from --help, passed to the Condenser as before.
RETIRED = [(["--subspace", "4"], "subspace", 4), (["--init-centre", "0.25"], "init_centre", 0.25),
           (["--soft-label-steps", "5"], "soft_label_steps", 5), (["--directions", "rows"], "directions", "rows"),
           (["--directions", "columns"], "directions", "columns")]


@pytest.mark.parametrize("flags, dest, value", RETIRED, ids=[" ".join(f) for f, _, _ in RETIRED])
def test_retired_condense_options_warn_and_still_parse(flags, dest, value):
    with pytest.warns(FutureWarning, match=r"removed .* next release.*benchmarks/.*Python API") as caught:
        args = build_parser().parse_args(["condense", "--out", "x.csv", *flags])
    assert getattr(args, dest) == value
    assert len(caught) == 1 and flags[0] in str(caught[0].message)


@pytest.mark.parametrize("flags", [[], ["--directions", "rademacher"], ["--directions", "gaussian"], ["--directions", "orthogonal"]])
def test_kept_condense_options_do_not_warn(flags, recwarn):
    args = build_parser().parse_args(["condense", "--out", "x.csv", *flags])
    assert not [w for w in recwarn if issubclass(w.category, FutureWarning)]
    # The retired options keep their defaults when not given.
    assert (args.subspace, args.init_centre, args.soft_label_steps) == (None, 0.0, None)


def test_retired_condense_options_are_hidden_from_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["condense", "--help"])
    out = capsys.readouterr().out
    for flag in ("--subspace", "--init-centre", "--soft-label-steps"):
        assert flag not in out
    directions = re.search(r"--directions.*?(?=\n  --)", out, flags=re.DOTALL).group(0)
    assert "rademacher" in directions and "gaussian" in directions and "orthogonal" in directions
    assert "rows" not in directions and "columns" not in directions
    for group in ("data:", "model:", "privacy:", "synthetic table:", "optimisation (advanced):", "output:"):
        assert f"\n{group}\n" in out


class _Built(Exception):
    pass


def test_retired_condense_options_reach_the_condenser(tmp_path, monkeypatch):
    """The CLI passes them through as before (the Condenser warns on its own); nothing is fitted."""
    import zodc.estimator
    from zodc.cli import main

    seen = {}

    class Recorder:
        def __init__(self, model, **params):
            seen.update(params)
            raise _Built

    monkeypatch.setattr(zodc.estimator, "Condenser", Recorder)
    with pytest.warns(FutureWarning), pytest.raises(_Built):
        main(["condense", "--dataset", "breast_cancer", "--out", str(tmp_path / "x.csv"), "--seed", "1", "--quiet",
              "--subspace", "4", "--init-centre", "0.25", "--soft-label-steps", "5", "--directions", "columns"])
    assert (seen["subspace"], seen["init"].centre, seen["soft_label_steps"], seen["directions"]) == (4, 0.25, 5, "columns")
    assert not (tmp_path / "x.csv").exists()
