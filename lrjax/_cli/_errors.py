"""What every command shares: the usage error (one line, exit code 2), the parser
class that raises it, and writing a figure."""

from __future__ import annotations

import argparse

EXIT_USAGE = 2


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise UsageError(message)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default: argparse's ``(default: ...)`` unless the help says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or action.nargs == 0:
            return text  # switches say in words what happens without them
        return super()._get_help_string(action)


def save_figure(fig, out: str, dpi: int = 120) -> None:
    """Writes ``fig`` to ``out``; a file that cannot be written is a usage error."""
    try:
        fig.savefig(out, dpi=dpi)
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot write {out!r}: {e}") from None
