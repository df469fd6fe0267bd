"""What every ``reqmgmt`` command shares: registration, options, exit codes, output, errors.

A command is a function taking a :class:`Context` and returning an
:class:`Outcome`, registered with :func:`command`::

    @command("verify", help="check every audit chain", arguments=_verify_arguments)
    def _verify(ctx: Context) -> Outcome:
        with ctx.desk() as desk:          # an existing database only
            ...
        return Outcome(data={...}, text="...", code=Exit.ATTENTION if broken else Exit.OK)

It then has ``--json``, ``-v``/``--log-level``, ``--plugin``,
``--no-entrypoints``, the exit codes below, and one line on stderr instead of
a traceback for the environment's faults.  ``command("db current", ...)``
registers a subcommand of ``db`` (see :func:`group`).

Exit codes (docs/cli.md): 0 done; 1 error; 2 usage (a wrong option or
value); 3 done, but something needs attention (dead letters, failed
deliveries, a broken audit chain, a schema to upgrade).
"""

from __future__ import annotations

import argparse
import enum
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConfigError, ReqMgmtError

if TYPE_CHECKING:
    import pluggy

    from .desk import Desk

__all__ = [
    "Context",
    "Exit",
    "Outcome",
    "UsageError",
    "command",
    "group",
    "load_plugin",
    "run",
]

log = logging.getLogger("reqmgmt")


class Exit(enum.IntEnum):
    """The exit codes of every ``reqmgmt`` command."""

    OK = 0  #: done
    ERROR = 1  #: an error: nothing (more) was done; the message says what and where
    USAGE = 2  #: a wrong option or value on the command line
    ATTENTION = 3  #: done, but something needs a person: dead letters, a broken chain, ...


class UsageError(ReqMgmtError, ValueError):
    """A command-line value a command refused (exit 2); the message names the option."""

    code = "error.usage"


@attrs.frozen
class Outcome:
    """What a command did: ``data`` for ``--json``, ``text`` for people, the exit code."""

    data: Any = None
    text: str | None = None
    code: Exit = Exit.OK


@attrs.define
class Context:
    """What a command works with: its arguments, the host's plugins, its output."""

    args: argparse.Namespace
    name: str
    plugins: list[object]
    json: bool

    @property
    def entrypoints(self) -> bool:
        """Whether the host's ``reqmgmt`` entry-point plugins are loaded."""
        return not self.args.no_entrypoints

    def desk(self, url: str | None = None, *, create: bool = False) -> Desk:
        """A Desk on ``url`` (default ``--db``) with the host's plugins, for a worker.

        An existing reqmgmt database only, unless ``create``: a typo in the
        URL raises :class:`reqmgmt.NoDatabase` and creates nothing.
        Notifications are delivered by ``dispatch`` only (no autodispatch).
        """
        from .desk import Desk

        target = url if url is not None else self.args.db
        rule_files: list[str] = list(getattr(self.args, "rules", None) or ())
        desk = Desk.open(
            target,
            rules=rule_files or None,
            plugins=self.plugins,
            load_entrypoints=self.entrypoints,
            autodispatch=False,
            create=create,
        )
        log.info("opened %s", _shown(target))
        return desk

    def plugin_manager(self) -> pluggy.PluginManager:
        """The plugin manager of ``--plugin`` and (unless ``--no-entrypoints``) entry points."""
        from .plugins import make_plugin_manager

        return make_plugin_manager(self.plugins, load_entrypoints=self.entrypoints)


def _shown(url: str) -> str:
    if "sqlalchemy" in sys.modules:
        from .storage.sql import shown_url

        return shown_url(url)
    return url


# --- registration ------------------------------------------------------------------------


@attrs.frozen
class _Command:
    name: str
    run: Callable[[Context], Outcome]
    help: str
    arguments: Callable[[argparse.ArgumentParser], None] | None


_COMMANDS: dict[str, _Command] = {}
_GROUPS: dict[str, str] = {}


def command(
    name: str,
    *,
    help: str,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Callable[[Callable[[Context], Outcome]], Callable[[Context], Outcome]]:
    """Register a command (``"report"``, or ``"db current"`` under the group ``db``).

    ``arguments`` adds the command's own options to its parser; the common
    ones (``--json``, ``-v``, ``--plugin``, ...) are added for it.
    """

    def register(run: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        known = _COMMANDS.get(name)
        # The same function again is the module run twice (python -m reqmgmt.cli).
        if known is not None and known.run.__qualname__ != run.__qualname__:
            raise ConfigError(
                f"command {name!r}", f"registered by {known.run.__qualname__} already"
            )
        _COMMANDS[name] = _Command(name, run, help, arguments)
        return run

    return register


def group(name: str, *, help: str) -> None:
    """Declare a group of commands (``db``), registered as ``"db <action>"``."""
    _GROUPS[name] = help


def _common(parser: argparse.ArgumentParser) -> None:
    common = parser.add_argument_group("common options")
    common.add_argument(
        "--json", action="store_true", help="print one JSON document on stdout instead of text"
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what the command does on stderr (-v info, -vv debug)",
    )
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="the log level of reqmgmt's logger (default warning)",
    )
    common.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="register this plugin object (a class is instantiated); repeatable",
    )
    common.add_argument(
        "--no-entrypoints",
        action="store_true",
        help="do not load the plugins of the 'reqmgmt' entry-point group",
    )


def _parser(version: Callable[[], str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reqmgmt",
        description="Customer-requirement management (客户需求管理)",
        epilog="exit codes: 0 done, 1 error, 2 usage, 3 done but something needs attention",
    )
    parser.add_argument("--version", action=_Version, version_of=version)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, Any] = {}
    for cmd in _COMMANDS.values():
        head, _, action = cmd.name.partition(" ")
        target = sub
        if action:
            if head not in groups:
                g = sub.add_parser(head, help=_GROUPS.get(head, ""))
                groups[head] = g.add_subparsers(dest="action", required=True, metavar="ACTION")
            target = groups[head]
        p = target.add_parser(action or head, help=cmd.help, description=cmd.help)
        if cmd.arguments is not None:
            cmd.arguments(p)
        _common(p)
        p.set_defaults(_command=cmd)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed version, read only when asked."""

    def __init__(self, option_strings: Sequence[str], version_of: Callable[[], str], **kw: Any):
        super().__init__(option_strings, nargs=0, help="print the version and exit", **kw)
        self.version_of = version_of

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kw: Any) -> None:
        print(f"reqmgmt {self.version_of()}")
        parser.exit()


# --- plugins, logging ---------------------------------------------------------------------


def load_plugin(spec: str) -> object:
    """The object ``module:attr`` names (``attr`` may be dotted); a class is instantiated.

    The current directory is searched too, as ``python -m`` does, so a host's
    own module works without installing it.  Raises :class:`ConfigError`.
    """
    module_name, sep, attr = spec.partition(":")
    where = f"--plugin {spec!r}"
    if not sep or not module_name or not attr:
        raise UsageError(f"{where}: expected MODULE:ATTR, e.g. erp_plugins:notifier")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(where, f"cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigError(where, f"{module_name!r} has no attribute {attr!r}") from None
    if isinstance(found, type):
        try:
            found = found()
        except TypeError as exc:
            problem = f"cannot instantiate {attr} without arguments: {exc}"
            raise ConfigError(where, problem) from None
    return found


def _configure_logging(args: argparse.Namespace) -> None:
    """stderr, reqmgmt's logger at the chosen level; other libraries stay at warning."""
    if args.log_level:
        level = getattr(logging, args.log_level.upper())
    else:
        level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log.setLevel(level)


# --- running -----------------------------------------------------------------------------


#: The environment variable choosing the language of error messages (``zh`` or ``en``).
LANG_ENV = "REQMGMT_LANG"


def _error(
    name: str,
    as_json: bool,
    code: Exit,
    message: str,
    kind: str,
    exc: ReqMgmtError | None = None,
) -> int:
    """Say what went wrong on stderr (in ``$REQMGMT_LANG``) and, with ``--json``, on stdout."""
    lang = "zh" if os.environ.get(LANG_ENV, "").lower().startswith("zh") else "en"
    print(f"reqmgmt {name}: {exc.text(lang) if exc else message}", file=sys.stderr)
    if as_json:
        error: dict[str, Any] = {"type": kind, "message": message, "exit": int(code)}
        if exc is not None:
            error.update(code=exc.code, zh=exc.zh)
        _print_json({"error": error})
    return int(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def _quiet_pipe() -> Iterator[None]:
    """A reader that closed the pipe (``reqmgmt outbox | head``) ends the output quietly."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would complain again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise


def _environment_fault(exc: BaseException) -> str | None:
    """One line for a fault of the environment (database, files), else ``None``."""
    if "sqlalchemy" in sys.modules:
        import sqlalchemy as sa

        if isinstance(exc, sa.exc.DBAPIError):
            text = str(exc.orig).strip()
            return f"database error: {text.splitlines()[0] if text else type(exc.orig).__name__}"
        if isinstance(exc, sa.exc.SQLAlchemyError):
            return f"database error: {str(exc).splitlines()[0]}"
    if isinstance(exc, OSError):
        return str(exc)
    return None


def run(argv: Sequence[str] | None, version: Callable[[], str]) -> int:
    """Parse ``argv``, run the command, print its outcome; the exit code."""
    args = _parser(version).parse_args(argv)
    cmd: _Command = args._command
    name = cmd.name
    as_json = bool(args.json)
    _configure_logging(args)
    try:
        with _quiet_pipe():
            try:
                plugins = [load_plugin(spec) for spec in args.plugin]
                for spec, plugin in zip(args.plugin, plugins, strict=True):
                    log.debug("plugin %s: %r", spec, plugin)
                outcome = cmd.run(Context(args, name, plugins, as_json))
            except BrokenPipeError:
                raise
            except UsageError as exc:
                return _error(name, as_json, Exit.USAGE, str(exc), type(exc).__name__, exc)
            except ReqMgmtError as exc:
                return _error(name, as_json, Exit.ERROR, str(exc), type(exc).__name__, exc)
            except (Exception, KeyboardInterrupt) as exc:
                if isinstance(exc, KeyboardInterrupt):
                    print(f"reqmgmt {name}: interrupted", file=sys.stderr)
                    return 130
                fault = _environment_fault(exc)
                if fault is None:
                    raise  # a bug: the traceback is what a report needs
                log.debug("%s", name, exc_info=exc)
                return _error(name, as_json, Exit.ERROR, fault, type(exc).__name__)
            if as_json:
                _print_json(outcome.data)
            elif outcome.text is not None:
                sys.stdout.write(outcome.text.rstrip("\n") + "\n")
            return int(outcome.code)
    except BrokenPipeError:
        return int(Exit.ERROR)
