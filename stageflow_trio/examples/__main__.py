"""``python -m stageflow_trio.examples [NAME]``: list the examples, or run one."""

from __future__ import annotations

import sys

from stageflow_trio.cli.run import OutputError
from stageflow_trio.examples import (
    _output_failed,
    _reader_gone,
    _stdout_guard,
    list_examples,
    run_example,
)


def main(argv: list[str]) -> int:
    """List the examples (no argument) or run the one named; the exit status.

    ``-h`` / ``--help`` prints the usage (status 0); anything else unknown prints it
    on stderr (status 2); a reader that goes away (``| head``) ends it quietly (141);
    an output that cannot be written (a full disk) is one line on stderr (status 2).
    """
    usage = f"usage: python -m stageflow_trio.examples [{'|'.join(list_examples())}]"
    if len(argv) > 1 or (argv and argv[0] not in [*list_examples(), "-h", "--help"]):
        print(usage, file=sys.stderr)
        return 2
    try:
        with _stdout_guard():
            if argv in (["-h"], ["--help"]):
                print(usage)
            elif argv:
                run_example(argv[0])
            else:
                print("\n".join(list_examples()))
    except BrokenPipeError:
        return _reader_gone()
    except OutputError as exc:
        return _output_failed("python -m stageflow_trio.examples", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
