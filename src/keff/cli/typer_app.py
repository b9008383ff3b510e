"""The typer apps of keff's CLI, made so that ``keff --help`` and ``keff GROUP --help`` stay fast.

Three costs of typer are avoided here, without changing what any command accepts or prints:

* typer coerces the value of every group's ``--help`` option through a pydantic ``TypeAdapter``,
  even when ``--help`` was not given (value ``None``), so ``keff eval --help`` imported pydantic
  (~0.15 s) only to learn that ``keff --help`` was not asked for. :class:`KeffGroup` gives a
  ``--help`` that was not given the value ``False``, which typer passes through as is (a bool
  flag's bool), and whose callback does nothing, exactly as with ``None``.
* typer renders help with rich when its markup mode is "rich" (its default), and for that
  imports ``typer.rich_utils``, which pulls in rich's markdown, traceback and pretty-printing
  machinery (~0.15-0.2 s, more than the rest of ``keff --help``). keff's help texts hold no
  rich markup, so :func:`new_app` sets ``rich_markup_mode=None``: the same texts, laid out by
  click's plain formatter (no boxes). Usage errors are unaffected: :func:`keff.cli.main` prints
  them itself, on one line.
* typer builds every command's options from its signature on each run (``typing.get_type_hints``);
  string annotations would be compiled anew each time (tens of ms for keff's 44 commands). So the
  command modules (``keff/cli/__init__.py`` and ``*_cmd.py``) do not use
  ``from __future__ import annotations``; a name their annotations cannot reach at import is quoted.

The command modules import nothing heavy at module level either (numpy, rich, keff's data, model
and index packages load inside the commands): ``tests/cli/test_import_cost.py`` checks both.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperGroup, TyperOption

#: Widest help text (on a terminal that wide): click's default, 80, would cut command summaries.
MAX_HELP_WIDTH = 120


class _HelpOption(TyperOption):
    """A ``--help`` flag whose absent value (``None``) is read as ``False`` before coercion."""

    def process_value(self, ctx: Any, value: Any) -> Any:
        return super().process_value(ctx, False if value is None else value)


class KeffGroup(TyperGroup):
    """typer's group, with the light ``--help`` option of :class:`_HelpOption`, listing each
    command with the whole first paragraph of its help (as typer's rich help did; click would
    cut it at the first sentence or the line's end)."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            text = inspect.cleandoc(cmd.short_help or cmd.help or "").split("\n\n")[0]
            rows.append((name, " ".join(text.split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option = super().get_help_option(ctx)
        if option is not None and type(option) is TyperOption:
            option.__class__ = _HelpOption  # same object (click orders eager options by identity)
        return option


def new_app(**kwargs: Any) -> typer.Typer:
    """A ``typer.Typer`` for keff: groups of class :class:`KeffGroup`, plain help (``kwargs`` as typer's)."""
    kwargs.setdefault("context_settings", {"max_content_width": MAX_HELP_WIDTH})
    return typer.Typer(cls=KeffGroup, rich_markup_mode=None, **kwargs)
