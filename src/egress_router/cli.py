"""The ``egress-router`` command line: one entry point, one line per error.

Owns: the top-level Typer application, registering each command group, and turning our
errors into a single stderr line and an exit status (no tracebacks for expected failures).
Must not: contain command logic (see ``egress_router.commands``).
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from egress_router.commands import cni, dns_proxy, firewall, http_proxy, lab, operator, setup
from egress_router.errors import EgressRouterError

app = typer.Typer(
    name="egress-router",
    help="Egress router (redirect, HTTP proxy, DNS proxy) and egress firewall.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for group in (setup, lab, http_proxy, dns_proxy, firewall, cni, operator):
    group.register(app)


def fail(error: EgressRouterError) -> int:
    """Print ``error`` as one line on stderr and return its exit status."""
    print(f"egress-router: {error.one_line()}", file=sys.stderr, flush=True)
    return error.exit_code


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        result = app(args=argv, prog_name="egress-router", standalone_mode=False)
    except EgressRouterError as error:
        return fail(error)
    except KeyboardInterrupt:
        print("egress-router: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        print("egress-router: aborted", file=sys.stderr)
        return 130
    except TyperException as exc:  # usage errors: unknown option, bad value, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"egress-router: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
