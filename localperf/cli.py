"""absl flags for the command lines, as AlgoPerf's own scripts take them.

Each script keeps its flags in a `flags.FlagValues` of its own, so scripts
import side by side (as in the tests), and parses them with `parse`:

  FLAGS = flags.FlagValues()
  flags.DEFINE_string('workload', 'mnist1d', 'Workload name.',
                      flag_values=FLAGS)

  def main(argv=None) -> int:
    cli.parse(FLAGS, argv, __doc__)
    ...

absl's conventions hold: `--flag=value` or `--flag value`, `--noX` for a
boolean, `--flagfile=FILE`, and absl logging's own flags (`--verbosity`,
`--logtostderr`, ...). `--help` prints the script's docstring and its flags,
`--helpfull` absl's too. A bad flag, or a check of the script's that fails
(`usage_error`), prints one line naming it and exits with status 2, as
argparse did, before any work starts. A long-running script that catches
Ctrl-C (KeyboardInterrupt) says in one line what it kept and how to go on
(`interrupted`), and exits with status 130, as a shell reports SIGINT;
within `sigterm_as_interrupt`, SIGTERM stops it the same way (`Terminated`,
a KeyboardInterrupt), with exit status 143.
"""

import contextlib
import os
import signal
import sys
from typing import Iterator, List, NoReturn, Optional, Sequence

from absl import flags
from absl import logging

USAGE_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130  # 128 + SIGINT.
TERMINATED_STATUS = 143  # 128 + SIGTERM.
_HELP = ('--help', '-help', '-h', '-?', '--helpshort')
_HELPFULL = ('--helpfull', '-helpfull')


def _prog() -> str:
  main = sys.modules.get('__main__')
  spec = getattr(main, '__spec__', None)
  if spec is not None and spec.name:
    return f'python -m {spec.name}'
  return os.path.basename(sys.argv[0]) or 'python'


def usage_error(message: str) -> NoReturn:
  """Prints `<prog>: error: <message>` and exits with status 2."""
  print(f'{_prog()}: error: {message}', file=sys.stderr)
  raise SystemExit(USAGE_ERROR_STATUS)


class Terminated(KeyboardInterrupt):
  """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
  """Within it, SIGTERM raises `Terminated` in the main thread; the previous
  handler is restored on leaving."""
  def terminate(signum, frame):
    del signum, frame
    raise Terminated()
  previous = signal.signal(signal.SIGTERM, terminate)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def interrupted(note: str, error: Optional[BaseException] = None) -> int:
  """Prints `<prog>: interrupted; <note>` on stderr ('terminated (SIGTERM)'
  if `error` is `Terminated`); returns 130, or 143 for SIGTERM."""
  if isinstance(error, Terminated):
    print(f'\n{_prog()}: terminated (SIGTERM); {note}', file=sys.stderr)
    return TERMINATED_STATUS
  print(f'\n{_prog()}: interrupted; {note}', file=sys.stderr)
  return INTERRUPTED_STATUS


def parse(flag_values: flags.FlagValues,
          argv: Optional[Sequence[str]] = None,
          doc: str = '') -> List[str]:
  """Parses `argv` (without the program name; default `sys.argv[1:]`).

  Flags not given keep their defaults, even when a process parses twice.
  Also routes Python and absl logging to stderr in absl's format.

  Returns:
    The arguments that are not flags (after `--`).
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  if any(a in _HELP + _HELPFULL for a in argv):
    print(doc.strip() + '\n\nFlags:\n' + flag_values.get_help())
    if any(a in _HELPFULL for a in argv):
      # --flagfile and --undefok are listed above, with the script's flags.
      print('\nabsl and logging flags:\n'
            + flags.FLAGS.get_help(include_special_flags=False))
    raise SystemExit(0)
  flag_values.unparse_flags()
  try:
    rest = flag_values([_prog()] + argv, known_only=True)
    rest = flags.FLAGS(rest)  # absl logging's flags, or an unknown flag.
  except flags.Error as e:
    usage_error(str(e))
  logging.use_absl_handler()
  # The scripts' INFO lines show unless --verbosity says otherwise; other
  # libraries' (jax's) stay at WARNING.
  verbosity = flags.FLAGS['verbosity']
  logging.get_absl_logger().setLevel(logging.converter.absl_to_standard(
      logging.INFO if verbosity.using_default_value else verbosity.value))
  return rest[1:]
