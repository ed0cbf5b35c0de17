"""Guardrails: check content for PII, profanity, blocked topics, prompt injection and length.

- Checks (each ``check(content, context=None) -> GuardrailResult``, synchronous):
  :class:`PIIDetector` (email, phone, SSN, credit card, IP address; optional
  redaction), :class:`ContentFilter` (profanity and blocked regexes, also on a
  leetspeak-normalized copy), :class:`InjectionDetector`, :class:`ContentLengthCheck`.
  :class:`GuardrailCheck` is the protocol for your own. The first three also check
  text that is not pure ASCII folded against Unicode evasions (see ``_fold``).
- :class:`GuardrailStage` runs several checks on the input text (or on one
  input key) as a GUARD stage and fails, or passes with an audit event, on a
  violation, as its :class:`GuardrailConfig` says.

Example::

    guard = GuardrailStage(
        checks=[PIIDetector(redact=True), ContentFilter(block_profanity=True)],
        config=GuardrailConfig(fail_on_violation=True),
    )
"""

from __future__ import annotations

import bisect
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import attrs
import trio

from stageflow_trio._args import check_flag, check_int, check_number, error_text, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.core import StageKind, StageOutput
from stageflow_trio.utils.frozen import FrozenDict, FrozenList

if TYPE_CHECKING:
    from stageflow_trio.core import StageContext
    from stageflow_trio.events import EventSink

__all__ = [
    "ContentFilter",
    "ContentLengthCheck",
    "GuardrailCheck",
    "GuardrailConfig",
    "GuardrailResult",
    "GuardrailStage",
    "InjectionDetector",
    "PIIDetector",
    "PolicyViolation",
    "ViolationType",
]

logger: logging.Logger = logging.getLogger("stageflow_trio.helpers.guardrails")

_LEET_TRANSLATION = str.maketrans(
    {
        "0": "o",
        "1": "l",
        "2": "z",
        "3": "e",
        "4": "a",
        "5": "s",
        "6": "g",
        "7": "t",
        "8": "b",
        "9": "g",
        "@": "a",
        "$": "s",
        "!": "i",
        "+": "t",
    }
)

_LEET_CHAR = re.compile(r"[0-9@$!+]")
_WORD_CHAR = re.compile(r"\w")
_WORD_ONLY = re.compile(r"\w+")

# Where a match of a default PII pattern can start. Every default pattern except
# the email one starts with "+", "(" or a digit; the email pattern has exactly
# one "@" and a local part of these characters before it.
_DIGIT_START = re.compile(r"[+(\d]")
# Above one start in this many characters, PIIDetector searches with finditer.
_DENSE_STARTS = 6
_ASCII_STARTS = "0123456789+("
_EMAIL_LOCAL_CHAR = re.compile(r"[A-Za-z0-9._%+-]", re.IGNORECASE)
# The default email pattern from its "@" on. A match's local part is a run of
# local-part characters ending just before the "@", so the rest of the match
# does not depend on where the match starts: it is tried once per "@".
_EMAIL_DOMAIN = re.compile(r"@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b", re.IGNORECASE)

Finder = Callable[["re.Pattern[str]", str, "list[int] | None"], "list[re.Match[str]]"]


def _find_all(
    pattern: re.Pattern[str], content: str, _starts: list[int] | None
) -> list[re.Match[str]]:
    return list(pattern.finditer(content))


def _find_from(
    pattern: re.Pattern[str], content: str, starts: list[int] | None
) -> list[re.Match[str]]:
    """``pattern.finditer(content)`` for a pattern whose matches begin at one of ``starts``.

    Tries only those positions, left to right, skipping the ones inside the
    previous match, as finditer would; ``match(content, pos)`` sees the text
    before ``pos``, so the leading ``\\b`` behaves the same.
    """
    matches: list[re.Match[str]] = []
    end = 0
    match_at = pattern.match
    for start in starts or ():
        if start >= end:
            found = match_at(content, start)
            if found is not None:
                matches.append(found)
                end = found.end()
    return matches


def _find_emails(
    pattern: re.Pattern[str], content: str, _starts: list[int] | None
) -> list[re.Match[str]]:
    """``pattern.finditer(content)`` for the default email pattern, tried only near an "@".

    A match holds exactly one "@" and only local-part characters before it, so
    the match holding a given "@" (if any) starts in the run of local-part
    characters just before it; the leftmost position that matches is the one
    finditer would find.

    The part from the "@" on is tried once, before any start: when it fails no
    start can match. Trying every start of a long run (``"a." * 50_000 + "@"``)
    would otherwise cost the run's length each, quadratic time in all (the
    reference's ``finditer`` took minutes on 100 KB). Once it matches, a start
    fails at once at the leading ``\\b`` or matches, so the time is linear.
    """
    matches: list[re.Match[str]] = []
    end = 0
    find = content.find
    local_char = _EMAIL_LOCAL_CHAR.match
    match_at = pattern.match
    domain_at = _EMAIL_DOMAIN.match
    at = find("@")
    while at != -1:
        if domain_at(content, at) is None:
            at = find("@", at + 1)
            continue
        start = at
        while start > end and local_char(content, start - 1) is not None:
            start -= 1
        for position in range(start, at):
            found = match_at(content, position)
            if found is not None:
                matches.append(found)
                end = found.end()
                break
        at = find("@", at + 1)
    return matches


def _normalize_leetspeak(text: str) -> str:
    """``text`` with the common leetspeak substitutions undone (``h3ll0`` -> ``hello``)."""
    # str.translate costs about 50 us per KB of text that is not ASCII (on ASCII it
    # is quick): skipped when there is nothing to translate.
    if not text.isascii() and _LEET_CHAR.search(text) is None:
        return text
    return text.translate(_LEET_TRANSLATION)


# --- folding evasions --------------------------------------------------------------------
#
# The patterns are written for ASCII text, and cheap tricks slip text past them: an
# invisible character inside a word or number, fullwidth or mathematical letters, another
# script's digits, combining marks, Unicode dashes, Cyrillic or Greek letters drawn like
# Latin ones, invisible tag characters. Text that is not pure ASCII is checked as given
# and folded, with those undone; a match in the folded text is mapped back to the
# original characters it came from, which is what a location names and what redaction
# blanks out. ASCII text is its own fold, so it is checked exactly as the reference does.

_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63")
# Letters drawn like a Latin one (the common ones; Unicode's confusables list has
# thousands, most of them rare symbols).
_CONFUSABLES = str.maketrans(
    # Cyrillic lower and upper case.
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0455\u0456\u0458\u04bb\u0501\u051b\u051d\u04cf"
    "\u04af\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425\u0423\u0405\u0406"
    "\u0408\u04ae\u051a\u051c\u04c0"
    # Greek lower and upper case, then dotless i and Armenian o and u.
    "\u03bf\u03b1\u03bd\u03c1\u03b9\u03ba\u03c5\u03c7\u0391\u0392\u0395\u0396\u0397\u0399\u039a"
    "\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7\u0131\u0585\u057d",
    "aeopcyxsijhdqwlyABEKMHOPCTXYSIJYQWIoavpikuxABEZHIKMNOPTYXiou",
)
_MARKS = frozenset({"Mn", "Me"})
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# Characters whose fold a table keeps; past it each is folded again when met (the table
# would otherwise grow with every character a client sends, up to the 1.1 million).
_FOLD_TABLE_SIZE = 65_536


def _fold_char(char: str) -> str | None:
    """One character folded: its compatibility form with the marks dropped, digits,
    dashes and look-alike letters as ASCII, and a Unicode tag character (U+E0020-U+E007E:
    text that a model reads and a screen does not show) as the ASCII one it encodes;
    None for an invisible format character (Unicode category Cf: zero-width characters,
    soft hyphen, direction marks).
    """
    if "\U000e0020" <= char <= "\U000e007e":
        return chr(ord(char) - 0xE0000)
    if unicodedata.category(char) == "Cf":
        return None
    kept = []
    for part in unicodedata.normalize("NFKD", char):
        category = unicodedata.category(part)
        if category in _MARKS:
            continue
        if category == "Nd":
            part = str(unicodedata.decimal(part))
        elif part in _DASHES:
            part = "-"
        kept.append(part)
    # Recomposed, so that a Hangul syllable stays one character.
    folded = unicodedata.normalize("NFC", "".join(kept))
    return folded.translate(_CONFUSABLES)


class _FoldTable(dict[int, str]):
    """The ``str.translate`` table of :func:`_fold_char`, filled as characters are met."""

    def __init__(self) -> None:
        super().__init__()
        # The characters met so far that fold to nothing (invisible ones) or to other
        # than one character: text without them keeps its offsets when folded.
        self.invisible: set[str] = set()
        self.resized: set[str] = set()

    def __missing__(self, code: int) -> str:
        char = chr(code)
        folded = _fold_char(char)
        if folded is None:
            self.invisible.add(char)
            folded = ""
        if len(folded) != 1:
            self.resized.add(char)
        if len(self) < _FOLD_TABLE_SIZE:
            self[code] = folded
        return folded


_FOLD_TABLE = _FoldTable()


def _fold(text: str) -> tuple[str, bool]:
    """``text`` folded against evasions (``text`` itself when that changes nothing), and
    whether the fold moved offsets (then :func:`_origin` maps them back).

    Not cached across calls: a cache would keep the last user text (and the PII in it)
    alive in the process after its request ended.
    """
    if text.isascii():
        return text, False
    return _fold_text(text)


def _fold_text(text: str) -> tuple[str, bool]:
    table = _FOLD_TABLE
    if (len(text.encode("utf-8", "surrogatepass")) - len(text)) * 8 < len(text):
        # Mostly ASCII: str.translate would look up every character.
        folded = _NON_ASCII_RUN.sub(lambda run: run.group().translate(table), text)
    else:
        folded = text.translate(table)
    if folded == text:
        # Curly quotes, CJK and the like: nothing to undo (and the checks skip the copy).
        return text, False
    if len(folded) == len(text) and table.resized.isdisjoint(text):
        return folded, False
    if not table.invisible.isdisjoint(text):
        # Whether an invisible character is dropped depends on its neighbours.
        folded = _walk(text, table)[0]
    return folded, True


def _origin(text: str) -> list[int]:
    """For each character of ``_fold(text)``, the index in ``text`` of the character it
    came from."""
    return _walk(text, _FOLD_TABLE)[1]


def _walk(text: str, table: _FoldTable) -> tuple[str, list[int]]:
    pieces: list[str] = []
    origin: list[int] = []
    invisible = table.invisible
    position = 0
    for run in _NON_ASCII_RUN.finditer(text):
        start, end = run.span()
        pieces.append(text[position:start])
        origin.extend(range(position, start))
        index = start
        while index < end:
            char = text[index]
            if char in invisible:
                # A run of them is judged once: a long one costs its length, not its
                # length squared.
                last = index + 1
                while last < end and text[last] in invisible:
                    last += 1
                if _is_word_break(text, index, last, table):
                    pieces.append(text[index:last])
                    origin.extend(range(index, last))
                index = last
                continue
            folded = table[ord(char)]
            pieces.append(folded)
            origin.extend([index] * len(folded))
            index += 1
        position = end
    pieces.append(text[position:])
    origin.extend(range(position, len(text)))
    return "".join(pieces), origin


def _is_word_break(text: str, start: int, end: int, table: _FoldTable) -> bool:
    """Whether the invisible characters ``text[start:end]`` stand between two words.

    Thai, Khmer and other scripts written without spaces put a zero-width space
    between words: there it stays, a word boundary as in the original. Inside ASCII
    letters and digits it only hides a word or a number, and is dropped.
    """
    if start == 0 or end == len(text):
        return False
    pair = table[ord(text[start - 1])][-1:] + table[ord(text[end])][:1]
    return (
        len(pair) == 2
        and not pair.isascii()
        and _WORD_CHAR.match(pair, 0) is not None
        and _WORD_CHAR.match(pair, 1) is not None
    )


def _original_span(text: str, origin: list[int], start: int, end: int) -> tuple[int, int]:
    """The span of ``text`` that the folded span ``start:end`` came from, with the
    combining marks on its last character (see :func:`_with_marks`)."""
    if start == end:
        at = origin[start] if start < len(origin) else len(text)
        return at, at
    return _with_marks(text, origin[start], origin[end - 1] + 1)


def _with_marks(text: str, start: int, end: int) -> tuple[int, int]:
    """``start:end`` run on over the combining marks that follow it: they belong to its
    last character, and redacting the character alone would leave them on the mask."""
    while end < len(text) and unicodedata.category(text[end]) in _MARKS:
        end += 1
    return start, end


def _merge(given: list[tuple[int, int]], folded: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of one PII type found in the text as given and in its fold: all of the
    folded ones, and those given that no folded one covers, in order.

    A match in the text as given is the reference's: kept, nothing it finds is lost.
    One that a folded match covers was cut short by an evasion (``jo`` + zero-width
    space + ``hn@example.com``): the folded match replaces it.
    """
    if not folded:
        return given
    starts = [start for start, _ in folded]
    kept = list(folded)
    for span in given:
        index = bisect.bisect_right(starts, span[0]) - 1
        if index < 0 or folded[index][1] < span[1]:
            kept.append(span)
    return sorted(set(kept))


def _freeze(value: Mapping[str, Any]) -> FrozenDict[str, Any]:
    return value if type(value) is FrozenDict else FrozenDict(value)


def _location(value: Iterable[int] | None) -> tuple[int, int] | None:
    if value is None:
        return None
    start, end = value
    return (start, end)


def _compile(owner: str, param: str, patterns: Iterable[str], flags: int) -> list[re.Pattern[str]]:
    compiled = []
    for index, pattern in enumerate(patterns):
        # A str subclass is a str (the lists' check takes one, and so does re.compile):
        # this refuses only a subclass's own INJECTION_PATTERNS that are not text.
        if not isinstance(pattern, str):
            raise TypeError(f"{owner}: {param}[{index}] must be a str; got {type_of(pattern)}")
        try:
            compiled.append(re.compile(pattern, flags))
        except re.error as exc:
            raise ValueError(
                f"{owner}: {param}[{index}] is not a valid regular expression ({exc}); "
                f"got {pattern!r}"
            ) from None
    return compiled


def _str_list(owner: str, param: str, value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {param} must be a list of str or None; got {type_of(value)}")
    items = list(value)
    for index, item in enumerate(items):
        # A non-str item failed later with a bare TypeError from sorted(), set()
        # or the regex module, which named no parameter.
        if not isinstance(item, str):
            raise TypeError(f"{owner}: {param}[{index}] must be a str; got {type_of(item)}")
    return items


def _check_content(owner: str, content: object) -> None:
    if not isinstance(content, str):
        raise TypeError(f"{owner}: content must be a str; got {type_of(content)}")


def _check_list(owner: str, checks: object) -> list[Any]:
    if isinstance(checks, str) or not isinstance(checks, Iterable):
        raise TypeError(
            f"{owner}: checks must be a list of guardrail checks; got {type_of(checks)}"
        )
    return list(checks)


class ViolationType(Enum):
    """What kind of rule some content broke."""

    PII_DETECTED = "pii_detected"
    PROFANITY = "profanity"
    TOXICITY = "toxicity"
    CONTENT_TOO_LONG = "content_too_long"
    RATE_LIMITED = "rate_limited"
    BLOCKED_TOPIC = "blocked_topic"
    INJECTION_ATTEMPT = "injection_attempt"
    CUSTOM = "custom"


def _check_violation_type(
    _instance: object, _attribute: attrs.Attribute[ViolationType], value: ViolationType
) -> None:
    # A str here ("pii") was accepted and failed later, in to_dict().
    given: object = value
    if not isinstance(given, ViolationType):
        raise TypeError(f"PolicyViolation: type must be a ViolationType; got {type_of(given)}")


@frozen_compat
@attrs.frozen
class PolicyViolation:
    """One broken rule.

    Attributes:
        type: The kind of violation (a :class:`ViolationType`; anything else is a TypeError).
        message: What was found, for people.
        severity: 0 (harmless) to 1 (serious).
        metadata: Details (e.g. ``pii_type``), held read-only.
        location: ``(start, end)`` character offsets in the checked content, if known.
    """

    type: ViolationType = attrs.field(validator=_check_violation_type)
    message: str
    severity: float = 0.5
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)
    location: tuple[int, int] | None = attrs.field(default=None, converter=_location)

    def to_dict(self) -> dict[str, Any]:
        """``type`` as its string value, ``location`` as a tuple or None."""
        return {
            "type": self.type.value,
            "message": self.message,
            "severity": self.severity,
            "metadata": dict(self.metadata),
            "location": self.location,
        }


def _violations(value: Iterable[PolicyViolation]) -> FrozenList[PolicyViolation]:
    return value if type(value) is FrozenList else FrozenList(value)


@frozen_compat
@attrs.frozen
class GuardrailResult:
    """What one check found.

    Attributes:
        passed: True when there are no violations.
        violations: The violations, in the order found (a read-only list).
        transformed_content: The content after a transformation such as
            redaction, or None when the check changes nothing.
        metadata: What the check looked at, held read-only.
    """

    passed: bool
    violations: FrozenList[PolicyViolation] = attrs.field(factory=FrozenList, converter=_violations)
    transformed_content: str | None = None
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_freeze)

    def to_dict(self) -> dict[str, Any]:
        """Violations as a list of their ``to_dict()``."""
        return {
            "passed": self.passed,
            "violations": [violation.to_dict() for violation in self.violations],
            "transformed_content": self.transformed_content,
            "metadata": dict(self.metadata),
        }


class GuardrailCheck(Protocol):
    """A check :class:`GuardrailStage` can run: synchronous, no I/O."""

    def check(self, content: str, _context: dict[str, Any] | None = None) -> GuardrailResult:
        """Check ``content``; the stage passes ``{"user_id", "session_id"}`` (str or None)."""
        ...


@frozen_compat
@attrs.frozen
class GuardrailConfig:
    """How :class:`GuardrailStage` acts on violations.

    Attributes:
        fail_on_violation: Fail the stage on a violation; when False the stage
            passes with ``guardrail_passed=False`` and emits ``guardrail.fail_open``.
        transform_content: Apply the checks' transformations (redaction), each
            check seeing the previous one's result.
        violation_threshold: Violations below this severity are ignored.
        log_violations: Emit ``guardrail.violations_detected`` for each check that
            found something.

    Raises:
        TypeError, ValueError: a flag is not a bool, or the threshold not a number in [0, 1].
    """

    fail_on_violation: bool = True
    transform_content: bool = True
    violation_threshold: float = 0.0
    log_violations: bool = True

    def __attrs_post_init__(self) -> None:
        owner = "GuardrailConfig"
        check_flag(owner, "fail_on_violation", self.fail_on_violation)
        check_flag(owner, "transform_content", self.transform_content)
        check_flag(owner, "log_violations", self.log_violations)
        check_number(owner, "violation_threshold", self.violation_threshold)
        # Severities are 0-1: a threshold above 1 would ignore every violation,
        # silently turning the guard off.
        if not 0 <= self.violation_threshold <= 1:
            raise ValueError(
                f"{owner}: violation_threshold must be in [0, 1]; got {self.violation_threshold!r}"
            )


_DEFAULT_PII_PATTERNS: FrozenDict[str, tuple[str, str]] = FrozenDict(
    {
        "email": (
            r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}\b",
            "Email address detected",
        ),
        "phone": (
            r"\b(?:\+?1[-.\s]?)?\(?[0-9]{3}\)?[-.\s]?[0-9]{3}[-.\s]?[0-9]{4}\b",
            "Phone number detected",
        ),
        "ssn": (r"\b\d{3}[-.\s]?\d{2}[-.\s]?\d{4}\b", "SSN detected"),
        "credit_card": (r"\b(?:\d{4}[-.\s]?){3}\d{4}\b", "Credit card number detected"),
        "ip_address": (r"\b(?:\d{1,3}\.){3}\d{1,3}\b", "IP address detected"),
    }
)


class PIIDetector:
    """Finds (and optionally redacts) email addresses, phone numbers, SSNs, card numbers, IPs.

    Each match is a ``PII_DETECTED`` violation of severity 0.8 with
    ``metadata={"pii_type": ...}`` and its location, by type in the order of
    :attr:`PATTERNS`, then by position. Redaction replaces each match with
    as many ``redaction_char`` as it has characters.

    Text that is not pure ASCII is searched as given and folded (a zero-width
    character in a number, fullwidth or Arabic-Indic digits, ``jos\u00e9@...``);
    a folded match names, and redacts, the original characters it came from, and
    replaces the matches of its type in the text as given that it covers.

    Args:
        redact: Return the redacted text as ``transformed_content``.
        redaction_char: One character to redact with.
        detect_types: Which of :attr:`PATTERNS` to run; None or empty runs all.

    Raises:
        TypeError, ValueError: ``redaction_char`` is not one character, or
            ``detect_types`` names an unknown type.
    """

    PATTERNS: ClassVar[Mapping[str, tuple[str, str]]] = _DEFAULT_PII_PATTERNS

    def __init__(
        self,
        *,
        redact: bool = False,
        redaction_char: str = "*",
        detect_types: set[str] | None = None,
    ) -> None:
        owner = "PIIDetector"
        check_flag(owner, "redact", redact)
        if type(redaction_char) is not str or len(redaction_char) != 1:
            raise ValueError(
                f"{owner}: redaction_char must be a single character; got {redaction_char!r}"
            )
        types = _str_list(owner, "detect_types", detect_types)
        unknown = sorted(set(types) - set(self.PATTERNS))
        if unknown:
            raise ValueError(
                f"{owner}: detect_types must name types of PIIDetector.PATTERNS "
                f"({', '.join(self.PATTERNS)}); got unknown {', '.join(map(repr, unknown))}"
            )
        self._redact = redact
        self._redaction_char = redaction_char
        # In PATTERNS order, so the violations and the metadata are deterministic.
        chosen = set(types) or set(self.PATTERNS)
        self._types = [name for name in self.PATTERNS if name in chosen]
        self._compiled = [
            (
                name,
                re.compile(self.PATTERNS[name][0], re.IGNORECASE),
                self.PATTERNS[name][1],
                self._finder(name),
            )
            for name in self._types
        ]
        self._needs_starts = any(finder is _find_from for *_, finder in self._compiled)

    def _finder(self, name: str) -> Finder:
        # The shortcuts hold for the default patterns only; a subclass's own
        # patterns are searched in full.
        default = _DEFAULT_PII_PATTERNS.get(name)
        if default is None or self.PATTERNS[name][0] != default[0]:
            return _find_all
        return _find_emails if name == "email" else _find_from

    def _search(self, content: str) -> list[list[tuple[int, int]]]:
        """The spans of each type's matches in ``content``, in the order of ``_compiled``."""
        starts: list[int] | None = None
        dense = False
        if self._needs_starts:
            # Text that is mostly digits: a start tried from Python per digit costs
            # more than finditer's scan in C (10 MB of digits: 6.2 s against 0.9 s),
            # and the matches are the same. Measured crossing: about one start in six
            # characters; counted in C (ASCII starts only: other digits just take the
            # slower path).
            dense = sum(map(content.count, _ASCII_STARTS)) * _DENSE_STARTS > len(content)
            if not dense:
                starts = [found.start() for found in _DIGIT_START.finditer(content)]
        found = []
        for _, pattern, _, finder in self._compiled:
            if dense and finder is _find_from:
                finder = _find_all
            found.append([match.span() for match in finder(pattern, content, starts)])
        return found

    def check(self, content: str, _context: dict[str, Any] | None = None) -> GuardrailResult:
        """The PII found in ``content``; metadata ``pii_types_checked``.

        Raises:
            TypeError: ``content`` is not a str.
        """
        _check_content("PIIDetector.check", content)
        found = self._search(content)
        folded, shifted = _fold(content)
        if folded is not content:
            # Text that is not pure ASCII is searched folded too: the evasions hide
            # nothing there, and each folded match is mapped back to the original.
            origin = _origin(content) if shifted else None
            for index, in_folded in enumerate(self._search(folded)):
                if origin is not None:
                    in_folded = [_original_span(content, origin, *span) for span in in_folded]
                given = [_with_marks(content, *span) for span in found[index]]
                found[index] = _merge(given, in_folded)
        violations: list[PolicyViolation] = []
        spans: list[tuple[int, int]] = []
        for (pii_type, _, message, _), type_spans in zip(self._compiled, found, strict=True):
            if type_spans:
                violations.extend(
                    PolicyViolation(
                        type=ViolationType.PII_DETECTED,
                        message=message,
                        severity=0.8,
                        metadata={"pii_type": pii_type},
                        location=span,
                    )
                    for span in type_spans
                )
                spans.extend(type_spans)
        transformed = None
        if self._redact:
            transformed = self._redacted(content, spans) if spans else content
        return GuardrailResult(
            passed=not violations,
            violations=violations,
            transformed_content=transformed,
            metadata={"pii_types_checked": list(self._types)},
        )

    def _redacted(self, content: str, spans: list[tuple[int, int]]) -> str:
        # Redaction keeps every length, so the spans found in the original text
        # are the places to blank out, overlapping or not.
        pieces: list[str] = []
        position = 0
        for start, end in sorted(spans):
            if end <= position:
                continue
            start = max(start, position)
            pieces.append(content[position:start])
            pieces.append(self._redaction_char * (end - start))
            position = end
        pieces.append(content[position:])
        return "".join(pieces)


class ContentFilter:
    r"""Finds profanity and blocked topics, also when written in leetspeak.

    Profanity: each word of the content (lower-cased, ``\b\w+\b``), or of its
    leetspeak-normalized copy, that is in the list gives a ``PROFANITY``
    violation with ``metadata={"word": ...}`` and severity ``max_severity``, in
    alphabetical order. Blocked patterns: each regex that matches the content
    or its normalized copy (case-insensitive) gives a ``BLOCKED_TOPIC``
    violation of severity 0.9 with ``metadata={"pattern", "normalized"}``
    (``normalized`` is True when only a normalized copy matched). Text that is
    not pure ASCII has two more copies: its fold against Unicode evasions
    (zero-width characters, look-alike Cyrillic letters, ...) and that fold's
    leetspeak-normalized copy.

    Args:
        block_profanity: Check for profanity.
        profanity_list: The words (lower case); None or empty uses :attr:`DEFAULT_PROFANITY`.
        blocked_patterns: Regular expressions for blocked topics.
        max_severity: The severity of profanity violations, in [0, 1] (a
            :class:`PolicyViolation`'s range).

    Raises:
        TypeError, ValueError: a pattern is not a valid regex, ``max_severity`` is
            not a number in [0, 1], or an argument has the wrong type.
    """

    DEFAULT_PROFANITY: ClassVar[frozenset[str]] = frozenset({"damn", "hell"})

    def __init__(
        self,
        *,
        block_profanity: bool = True,
        profanity_list: set[str] | None = None,
        blocked_patterns: list[str] | None = None,
        max_severity: float = 0.3,
    ) -> None:
        owner = "ContentFilter"
        check_flag(owner, "block_profanity", block_profanity)
        words = _str_list(owner, "profanity_list", profanity_list)
        patterns = _str_list(owner, "blocked_patterns", blocked_patterns)
        check_number(owner, "max_severity", max_severity)
        if not 0 <= max_severity <= 1:
            raise ValueError(f"{owner}: max_severity must be in [0, 1]; got {max_severity!r}")
        self._block_profanity = block_profanity
        self._profanity = frozenset(words) or self.DEFAULT_PROFANITY
        # A word of the content is a maximal run of \w characters, so a listed
        # word is found where it occurs with no \w character on either side; an
        # entry that is not all \w characters can never equal such a word.
        candidates = sorted(
            (word for word in self._profanity if _WORD_ONLY.fullmatch(word)),
            key=lambda word: (-len(word), word),
        )
        self._profanity_pattern = (
            re.compile("(?:" + "|".join(map(re.escape, candidates)) + r")(?!\w)")
            if candidates
            else None
        )
        self._patterns = list(
            zip(patterns, _compile(owner, "blocked_patterns", patterns, re.IGNORECASE), strict=True)
        )
        self._max_severity = max_severity

    def _profane_words(self, text: str) -> set[str]:
        found: set[str] = set()
        if self._profanity_pattern is None:
            return found
        word_char = _WORD_CHAR.match
        for match in self._profanity_pattern.finditer(text):
            start = match.start()
            # A match inside a longer word ("shell") is not the word; finditer
            # resumes after it, where no word can start mid-run either.
            if start == 0 or word_char(text, start - 1) is None:
                found.add(match.group())
        return found

    def check(self, content: str, _context: dict[str, Any] | None = None) -> GuardrailResult:
        """The profanity and blocked topics in ``content``; metadata ``profanity_checked``.

        Raises:
            TypeError: ``content`` is not a str.
        """
        _check_content("ContentFilter.check", content)
        violations: list[PolicyViolation] = []
        # The copies besides the content: leetspeak undone, and for text that is not
        # pure ASCII the folded text with and without leetspeak undone.
        normalized = _normalize_leetspeak(content)
        copies = [normalized] if normalized != content else []
        folded, _ = _fold(content)
        if folded is not content:
            for copy in (folded, _normalize_leetspeak(folded)):
                if copy != content and copy not in copies:
                    copies.append(copy)
        if self._block_profanity:
            words = self._profane_words(content.lower())
            for copy in copies:
                words |= self._profane_words(copy.lower())
            violations.extend(
                PolicyViolation(
                    type=ViolationType.PROFANITY,
                    message=f"Profanity detected: {word}",
                    severity=self._max_severity,
                    metadata={"word": word},
                )
                for word in sorted(words)
            )
        for source, pattern in self._patterns:
            original = pattern.search(content) is not None
            in_normalized = False
            for copy in copies:
                if pattern.search(copy) is not None:
                    in_normalized = True
                    break
            if original or in_normalized:
                violations.append(
                    PolicyViolation(
                        type=ViolationType.BLOCKED_TOPIC,
                        message=f"Blocked pattern matched: {source}",
                        severity=0.9,
                        metadata={"pattern": source, "normalized": in_normalized and not original},
                    )
                )
        return GuardrailResult(
            passed=not violations,
            violations=violations,
            metadata={"profanity_checked": self._block_profanity},
        )


class InjectionDetector:
    """Finds prompt-injection attempts (instruction overrides, role changes, fake system tags).

    Each pattern of :attr:`INJECTION_PATTERNS` and ``additional_patterns`` that
    matches (case-insensitive) gives one ``INJECTION_ATTEMPT`` violation of
    severity 1.0 with ``metadata={"matched_pattern": ...}`` and the first
    match's location. A pattern that does not match text that is not pure ASCII
    is tried on its fold against Unicode evasions; the location then spans the
    original characters.

    Raises:
        TypeError, ValueError: an additional pattern is not a valid regex.
    """

    INJECTION_PATTERNS: ClassVar[tuple[str, ...]] = (
        r"ignore\s+(?:all\s+)?(?:previous|prior|above)\s+instructions?",
        r"disregard\s+(?:all\s+)?(?:previous|prior)\s+(?:instructions?|prompts?)",
        r"forget\s+(?:everything|all)\s+(?:you\s+)?(?:know|learned)",
        r"you\s+are\s+now\s+(?:a\s+)?(?:different|new)\s+(?:assistant|ai|bot)",
        r"new\s+(?:system\s+)?(?:prompt|instructions?)\s*:",
        r"<\s*system\s*>",
        r"\[\s*SYSTEM\s*\]",
        r"as\s+(?:your\s+)?trusted\s+(?:advisor|friend|developer)[^\n]{0,80}share",
        r"i\s+need\s+you\s+to\s+act\s+like\s+security\s+(?:tester|auditor)",
        r"refer\s+back\s+to\s+our\s+previous\s+conversation\s+and\s+repeat",
        r"multi[-\s]?step\s+instructions?\s+override",
    )

    def __init__(self, *, additional_patterns: list[str] | None = None) -> None:
        owner = "InjectionDetector"
        builtin = list(self.INJECTION_PATTERNS)
        extra = _str_list(owner, "additional_patterns", additional_patterns)
        # Compiled apart, so that an error names the index in the list it came from.
        compiled = [
            *_compile(owner, "INJECTION_PATTERNS", builtin, re.IGNORECASE),
            *_compile(owner, "additional_patterns", extra, re.IGNORECASE),
        ]
        self._patterns = list(zip([*builtin, *extra], compiled, strict=True))

    def check(self, content: str, _context: dict[str, Any] | None = None) -> GuardrailResult:
        """The injection patterns found in ``content``; metadata ``patterns_checked``.

        Raises:
            TypeError: ``content`` is not a str.
        """
        _check_content("InjectionDetector.check", content)
        violations: list[PolicyViolation] = []
        folded, shifted = _fold(content)
        origin: list[int] | None = None
        for source, pattern in self._patterns:
            match = pattern.search(content)
            location = None if match is None else match.span()
            if match is None and folded is not content:
                match = pattern.search(folded)
                if match is not None:
                    location = match.span()
                    if shifted:
                        if origin is None:
                            origin = _origin(content)
                        location = _original_span(content, origin, *location)
            if location is not None:
                violations.append(
                    PolicyViolation(
                        type=ViolationType.INJECTION_ATTEMPT,
                        message="Potential prompt injection detected",
                        severity=1.0,
                        metadata={"matched_pattern": source},
                        location=location,
                    )
                )
        return GuardrailResult(
            passed=not violations,
            violations=violations,
            metadata={"patterns_checked": len(self._patterns)},
        )


class ContentLengthCheck:
    """Checks the length in characters and in approximate tokens (``chars // 4``).

    Over ``max_chars`` or ``max_tokens`` gives a ``CONTENT_TOO_LONG`` violation
    (severity 0.5); under ``min_chars`` a ``CUSTOM`` one (severity 0.3). A limit
    of 0 is no limit.

    Raises:
        TypeError, ValueError: a limit is not an int >= 0.
    """

    def __init__(self, *, max_chars: int = 0, max_tokens: int = 0, min_chars: int = 0) -> None:
        owner = "ContentLengthCheck"
        self._max_chars = check_int(owner, "max_chars", max_chars, minimum=0)
        self._max_tokens = check_int(owner, "max_tokens", max_tokens, minimum=0)
        self._min_chars = check_int(owner, "min_chars", min_chars, minimum=0)

    def check(self, content: str, _context: dict[str, Any] | None = None) -> GuardrailResult:
        """The length violations of ``content``; metadata ``char_count`` and ``token_count``.

        Raises:
            TypeError: ``content`` is not a str.
        """
        _check_content("ContentLengthCheck.check", content)
        violations: list[PolicyViolation] = []
        char_count = len(content)
        token_count = char_count // 4
        if self._max_chars > 0 and char_count > self._max_chars:
            violations.append(
                PolicyViolation(
                    type=ViolationType.CONTENT_TOO_LONG,
                    message=f"Content exceeds max chars ({char_count} > {self._max_chars})",
                    severity=0.5,
                    metadata={"char_count": char_count, "limit": self._max_chars},
                )
            )
        if self._max_tokens > 0 and token_count > self._max_tokens:
            violations.append(
                PolicyViolation(
                    type=ViolationType.CONTENT_TOO_LONG,
                    message=f"Content exceeds max tokens (~{token_count} > {self._max_tokens})",
                    severity=0.5,
                    metadata={"token_count": token_count, "limit": self._max_tokens},
                )
            )
        if self._min_chars > 0 and char_count < self._min_chars:
            violations.append(
                PolicyViolation(
                    type=ViolationType.CUSTOM,
                    message=f"Content below min chars ({char_count} < {self._min_chars})",
                    severity=0.3,
                    metadata={"char_count": char_count, "minimum": self._min_chars},
                )
            )
        return GuardrailResult(
            passed=not violations,
            violations=violations,
            metadata={"char_count": char_count, "token_count": token_count},
        )


class GuardrailStage:
    """A GUARD stage that runs checks on the input text (or on one input key).

    The content is ``ctx.inputs.get(content_key)`` when ``content_key`` is set
    and the context has inputs, else the snapshot's ``input_text`` (a str
    subclass counts as a str); the stage skips ("No content to check")
    when it is missing or empty. The checks run in order, each on the previous
    one's transformed content when ``transform_content``; violations under
    ``violation_threshold`` are dropped.

    Output data: ``guardrail_passed``, ``violations`` (their ``to_dict()``),
    ``checks_run``, and ``transformed_content`` when the checks changed it.
    On a violation it fails (``"Guardrail violations: N found"``, with that
    data) when ``fail_on_violation``; otherwise it passes and emits
    ``guardrail.fail_open`` (``stage``, ``pipeline_run_id``, ``request_id``,
    ``execution_mode``, ``violation_count``, ``fail_on_violation``,
    ``violations``), or logs it as a warning when the context has no sink.
    A sink whose ``try_emit`` raises never fails the stage: each event it
    refused is logged as a warning instead.

    Args:
        checks: The checks (objects with a ``check`` method).
        config: Defaults to ``GuardrailConfig()``.
        content_key: Check this input key instead of the input text.

    Raises:
        TypeError: a check has no ``check`` method, or an argument has the wrong type.
    """

    name = "guardrail"
    kind = StageKind.GUARD

    def __init__(
        self,
        checks: list[GuardrailCheck],
        config: GuardrailConfig | None = None,
        *,
        content_key: str | None = None,
    ) -> None:
        owner = "GuardrailStage"
        checks = _check_list(owner, checks)
        for index, check in enumerate(checks):
            if not callable(getattr(check, "check", None)):
                raise TypeError(
                    f"{owner}: checks[{index}] must have a check(content, context) method; "
                    f"got {type_of(check)}"
                )
        if config is not None and type(config) is not GuardrailConfig:
            raise TypeError(
                f"{owner}: config must be a GuardrailConfig or None; got {type_of(config)}"
            )
        if content_key is not None and type(content_key) is not str:
            raise TypeError(
                f"{owner}: content_key must be a str or None; got {type_of(content_key)}"
            )
        self._checks = checks
        self._config = config or GuardrailConfig()
        self._content_key = content_key

    async def execute(self, ctx: StageContext) -> StageOutput:
        """Run the checks. A checkpoint (before the checks, which are synchronous).

        Raises:
            TypeError: the content is not a str.
        """
        await trio.lowlevel.checkpoint()
        # As the reference: a context without inputs (None) checks the input text.
        inputs: Any = ctx.inputs
        if self._content_key and inputs:
            content = inputs.get(self._content_key)
        else:
            content = ctx.snapshot.input_text
        if not content:
            return StageOutput.skip(reason="No content to check")
        if not isinstance(content, str):
            source = f"input {self._content_key!r}" if self._content_key else "input_text"
            raise TypeError(f"GuardrailStage: the {source} must be a str; got {type_of(content)}")

        config = self._config
        snapshot = ctx.snapshot
        check_ctx = {
            "user_id": str(snapshot.user_id) if snapshot.user_id else None,
            "session_id": str(snapshot.session_id) if snapshot.session_id else None,
        }
        sink = ctx.event_sink
        found: list[PolicyViolation] = []
        transformed = content
        for check in self._checks:
            result = check.check(transformed, dict(check_ctx))
            significant = [v for v in result.violations if v.severity >= config.violation_threshold]
            found.extend(significant)
            if config.transform_content and result.transformed_content:
                transformed = result.transformed_content
            if config.log_violations and significant and sink is not None:
                self._emit_violations(sink, type(check).__name__, significant)

        output: dict[str, Any] = {
            "guardrail_passed": not found,
            "violations": [v.to_dict() for v in found],
            "checks_run": len(self._checks),
        }
        if config.transform_content and transformed != content:
            output["transformed_content"] = transformed
        if found and config.fail_on_violation:
            return StageOutput.fail(error=f"Guardrail violations: {len(found)} found", data=output)
        if found:
            self._emit_fail_open_audit(ctx, found)
        return StageOutput.ok(**output)

    @staticmethod
    def _emit_violations(sink: EventSink, check: str, violations: list[PolicyViolation]) -> None:
        # A broken sink must not fail the stage (fail-open or not): log instead.
        data = {"violations": [v.to_dict() for v in violations], "check": check}
        try:
            sink.try_emit(type="guardrail.violations_detected", data=data)
        except Exception as error:  # noqa: BLE001 - the event falls back to the log
            text = error_text(error)
            logger.warning(
                "Failed to emit guardrail.violations_detected: %s",
                text,
                extra={"error": text, "guardrail_violations": data},
            )

    def _emit_fail_open_audit(self, ctx: StageContext, violations: list[PolicyViolation]) -> None:
        # Passing content that broke a rule must leave a trace: the sink gets
        # the audit event, or the log does when there is no sink or it fails.
        run_id = ctx.pipeline_run_id
        request_id = ctx.request_id
        payload = {
            "stage": ctx.stage_name,
            "pipeline_run_id": str(run_id) if run_id else None,
            "request_id": str(request_id) if request_id else None,
            "execution_mode": ctx.execution_mode,
            "violation_count": len(violations),
            "fail_on_violation": False,
            "violations": [v.to_dict() for v in violations],
        }
        sink = ctx.event_sink
        if sink is not None:
            try:
                sink.try_emit(type="guardrail.fail_open", data=payload)
            except Exception as error:  # noqa: BLE001 - the audit falls back to the log
                text = error_text(error)
                logger.warning(
                    "Failed to emit guardrail fail-open audit: %s", text, extra={"error": text}
                )
            else:
                return
        logger.warning("Guardrail fail-open audit", extra={"guardrail_fail_open": payload})
