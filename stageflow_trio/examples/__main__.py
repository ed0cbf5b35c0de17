"""``python -m stageflow_trio.examples [NAME]``: list the examples, or run one."""

from __future__ import annotations

import sys

from stageflow_trio.examples import _silence_stdout, list_examples, run_example


def main(argv: list[str]) -> int:
    """List the examples (no argument) or run the one named; the exit status.

    ``-h`` / ``--help`` prints the usage (status 0); anything else unknown prints it
    on stderr (status 2); a reader that goes away (``| head``) ends it quietly (141).
    """
    usage = f"usage: python -m stageflow_trio.examples [{'|'.join(list_examples())}]"
    if argv in (["-h"], ["--help"]):
        print(usage)
        return 0
    if len(argv) > 1 or (argv and argv[0] not in list_examples()):
        print(usage, file=sys.stderr)
        return 2
    try:
        if argv:
            run_example(argv[0])
        else:
            print("\n".join(list_examples()))
    except BrokenPipeError:
        _silence_stdout()
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
