"""keff's command line: one verb per job (``keff --help``).

Every failure on bad input is one line on stderr (``error: ...``) and exit code 2: keff's own
errors, usage errors, and operating-system errors on the user's files. An unexpected exception is
a bug: it is reported on one line with exit code 70 (``KEFF_DEBUG=1`` shows the traceback).
"""

import os
import sys

import typer

from keff.cli import (
    adapt_cmd,
    align_cmd,
    cache_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    index_cmd,
    models_cmd,
    predict_cmd,
    project_cmd,
    search_cmd,
    serve_cmd,
)
from keff.cli.typer_app import new_app
from keff.errors import KeffError

app = new_app(
    name="keff",
    help="Make frozen embedding models work together, and measure it on real retrieval data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from keff import __version__

        typer.echo(f"keff {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print keff's version and exit."
    ),
) -> None:
    """Make frozen embedding models work together, and measure it on real retrieval data."""


app.command("eval")(eval_cmd.eval_command)
app.command("compare")(eval_cmd.compare_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(align_cmd.app, name="align")
app.add_typer(project_cmd.app, name="project")
app.add_typer(adapt_cmd.app, name="adapt")
app.add_typer(predict_cmd.app, name="predict")
app.command("search")(search_cmd.search_command)
app.add_typer(index_cmd.app, name="index")
app.command("query")(index_cmd.query_command)
app.command("serve")(serve_cmd.serve_command)

#: Exit code of a failure on bad input (as click's usage errors).
EXIT_BAD_INPUT = 2
#: Exit code of an unexpected exception (a bug; EX_SOFTWARE).
EXIT_BUG = 70


def one_line(message: str) -> str:
    """``message`` on one line: line breaks become " / ", runs of blanks one space."""
    return " / ".join(" ".join(part.split()) for part in str(message).strip().splitlines() if part.strip())


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    from rich.text import Text

    from keff.cli.console import err

    err.print(Text("error: ", style="bold red") + Text(one_line(message)), soft_wrap=True, highlight=False)
    sys.exit(code)


def os_error_message(exc: OSError) -> str:
    """One line naming the file and the reason of an operating-system error."""
    where = exc.filename if exc.filename is not None else None
    reason = exc.strerror or str(exc)
    if exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    return f"{where}: {reason}" if where else reason


def _is_a(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is a click exception of class ``name`` (typer vendors its own click, so
    the classes are recognised by name, not imported)."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _usage_failure(exc: Exception) -> None:
    ctx = getattr(exc, "ctx", None)
    if _is_a(exc, "NoArgsIsHelpError"):
        print(exc.format_message())
        fail(f"{ctx.command_path} needs a command (listed above)")
    where = f" (see: {ctx.command_path} --help)" if ctx is not None and _is_a(exc, "UsageError") else ""
    fail(exc.format_message() + where)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; any failure is one clean line on stderr (see the module docstring)."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="keff")
    except (typer.Abort, KeyboardInterrupt):
        fail("interrupted", code=130)
    except KeffError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(os_error_message(exc))
    except MemoryError:
        fail("out of memory: try a smaller input or a sample")
    except Exception as exc:
        if _is_a(exc, "ClickException"):  # usage errors, bad option values
            _usage_failure(exc)
        if _is_a(exc, "Abort"):
            fail("interrupted", code=130)
        # a bug: one line for the user, the traceback on request
        if os.environ.get("KEFF_DEBUG"):
            raise
        fail(
            f"internal error (a bug in keff; please report it): {type(exc).__name__}: {exc} "
            "(rerun with KEFF_DEBUG=1 for the traceback)",
            code=EXIT_BUG,
        )
    if isinstance(code, int) and code:
        sys.exit(code)
