"""Type-level tests: mypy (strict, ``--warn-unused-ignores``) checks these files in CI.

They are never run. Each ``# type: ignore[code]`` marks an error that must occur: if
the library stops rejecting that line, mypy reports the ignore as unused and fails.
``assert_type`` pins what a call returns.
"""
