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
