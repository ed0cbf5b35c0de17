"""Versioned prompt templates: name a prompt, keep its versions, render one.

:class:`PromptTemplate` is a ``str.format_map`` template with a name and a
version; :class:`PromptLibrary` holds several versions per name and a default
version for each (the first registered, or the one registered with
``make_default=True``). Rendering gives a :class:`RenderedPrompt`, which keeps
the name and version so a run can record which prompt it used.

Example::

    library = PromptLibrary()
    library.register(PromptTemplate(name="greet", version="v1", template="Hi {who}"))
    assert library.render("greet", variables={"who": "Ada"}).content == "Hi Ada"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from stageflow_trio._args import check_flag, type_of
from stageflow_trio._frozen import frozen_compat
from stageflow_trio.utils.frozen import FrozenDict

__all__ = [
    "PromptLibrary",
    "PromptRenderError",
    "PromptTemplate",
    "RenderedPrompt",
]


class PromptRenderError(ValueError):
    """A template cannot be rendered: a variable is missing, or the template is malformed."""


def _mapping(owner: str, param: str, value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    """``value`` as a read-only dict; anything but a mapping or None is refused."""
    if type(value) is FrozenDict:
        return value
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping):
        # FrozenDict() alone would take a list of pairs, even ["ab"] as {"a": "b"}.
        raise TypeError(f"{owner}: {param} must be a mapping or None; got {type_of(value)}")
    return FrozenDict(value)


def _rendered_variables(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _mapping("RenderedPrompt", "variables", value)


def _rendered_metadata(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _mapping("RenderedPrompt", "metadata", value)


def _template_metadata(value: Mapping[str, Any] | None) -> FrozenDict[str, Any]:
    return _mapping("PromptTemplate", "metadata", value)


def _check_text(owner: str, param: str, value: object) -> None:
    if type(value) is not str:
        raise TypeError(f"{owner}: {param} must be a str; got {type_of(value)}")


def _check_variables(owner: str, value: object) -> None:
    if value is not None and not isinstance(value, Mapping):
        raise TypeError(f"{owner}: variables must be a mapping or None; got {type_of(value)}")


@frozen_compat
@attrs.frozen
class RenderedPrompt:
    """A rendered prompt with the name and version of its template.

    Attributes:
        name: The template's name.
        version: The template's version.
        content: The rendered text.
        variables: The variables it was rendered with (read-only).
        metadata: A copy of the template's metadata (read-only).

    Raises:
        TypeError: name, version or content is not a str, or variables or
            metadata is not a mapping (or None).
    """

    name: str
    version: str
    content: str
    variables: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_rendered_variables)
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_rendered_metadata)

    def __attrs_post_init__(self) -> None:
        for param in ("name", "version", "content"):
            _check_text("RenderedPrompt", param, getattr(self, param))


@frozen_compat
@attrs.frozen
class PromptTemplate:
    """A named, versioned ``str.format_map`` template.

    Attributes:
        name: The prompt's name, e.g. ``"support.system"``.
        version: Its version, e.g. ``"v2"``.
        template: The text; ``{variable}`` fields are filled by :meth:`render`.
        description: What the prompt is for.
        metadata: Free-form data copied into every rendering (read-only).

    Raises:
        TypeError: name, version, template or description is not a str, or
            metadata is not a mapping (or None).
    """

    name: str
    version: str
    template: str
    description: str = ""
    metadata: FrozenDict[str, Any] = attrs.field(factory=FrozenDict, converter=_template_metadata)

    def __attrs_post_init__(self) -> None:
        for param in ("name", "version", "template", "description"):
            _check_text("PromptTemplate", param, getattr(self, param))

    def render(self, variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
        """Fill the template's fields from ``variables``.

        Raises:
            PromptRenderError: a field has no variable ("Missing prompt variable
                'x' for name@version"), or the template is malformed or asks a
                variable for an attribute or item it lacks ("Cannot render prompt
                name@version: ...").
            TypeError: ``variables`` is not a mapping.
        """
        _check_variables("PromptTemplate.render", variables)
        provided = dict(variables or {})
        try:
            content = self.template.format_map(provided)
        except KeyError as exc:
            raise PromptRenderError(
                f"Missing prompt variable {exc.args[0]!r} for {self.name}@{self.version}"
            ) from exc
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            # A malformed field ("{", "{0}", "{x:d}") or a lookup the variable cannot
            # answer ("{user.name}", "{n[0]}"): the template's fault, named as such.
            raise PromptRenderError(
                f"Cannot render prompt {self.name}@{self.version}: {exc}"
            ) from exc
        return RenderedPrompt(
            name=self.name,
            version=self.version,
            content=content,
            variables=provided,
            metadata=self.metadata,
        )


class PromptLibrary:
    """Prompt templates by name and version, with a default version per name."""

    def __init__(self) -> None:
        self._prompts: dict[str, dict[str, PromptTemplate]] = {}
        self._defaults: dict[str, str] = {}

    def register(self, prompt: PromptTemplate, *, make_default: bool = False) -> None:
        """Add ``prompt`` (replacing the same name and version).

        The first version registered for a name is its default until one is
        registered with ``make_default=True``.

        Raises:
            TypeError: ``prompt`` is not a PromptTemplate or ``make_default`` not a bool.
        """
        if not isinstance(prompt, PromptTemplate):
            raise TypeError(
                f"PromptLibrary.register: prompt must be a PromptTemplate; got {type_of(prompt)}"
            )
        check_flag("PromptLibrary.register", "make_default", make_default)
        self._prompts.setdefault(prompt.name, {})[prompt.version] = prompt
        if make_default or prompt.name not in self._defaults:
            self._defaults[prompt.name] = prompt.version

    def get(self, name: str, *, version: str | None = None) -> PromptTemplate:
        """The template ``name`` at ``version`` (the default version when None).

        Raises:
            KeyError: no such name ("Unknown prompt: name") or version
                ("Unknown prompt version for name: 'v9'").
            TypeError: ``name`` is not a str, or ``version`` not a str or None.
        """
        _check_text("PromptLibrary.get", "name", name)
        if version is not None:
            _check_text("PromptLibrary.get", "version", version)
        versions = self._prompts.get(name)
        if not versions:
            raise KeyError(f"Unknown prompt: {name}")
        resolved = version or self._defaults.get(name)
        if resolved is None or resolved not in versions:
            raise KeyError(f"Unknown prompt version for {name}: {resolved!r}")
        return versions[resolved]

    def render(
        self,
        name: str,
        *,
        version: str | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> RenderedPrompt:
        """Render the template ``name`` at ``version`` with ``variables``.

        Raises:
            KeyError, TypeError: as :meth:`get`.
            PromptRenderError, TypeError: as :meth:`PromptTemplate.render`.
        """
        return self.get(name, version=version).render(variables)

    def versions(self, name: str) -> tuple[str, ...]:
        """The versions registered for ``name``, in registration order (empty if none).

        Raises:
            TypeError: ``name`` is not a str.
        """
        _check_text("PromptLibrary.versions", "name", name)
        return tuple(self._prompts.get(name, ()))

    def list_prompts(self) -> dict[str, tuple[str, ...]]:
        """Every prompt name with its versions."""
        return {name: tuple(versions) for name, versions in self._prompts.items()}
